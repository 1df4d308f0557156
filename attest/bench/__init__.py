"""Benchmarks of the verification core and the verifier daemon (``attest bench``).

Every report is measured in one run on one machine and carries its own baselines and the
machine's description, so a number is never read without the yardstick it was measured
against. Modules:

* :mod:`~attest.bench.machine`: what the machine is (CPU, cores, Python, libraries);
* :mod:`~attest.bench.core`: appraisals per second against libsodium, pycose and python-cwt;
* :mod:`~attest.bench.fleet`: a throwaway authority, manufacturer, verifier and chip fleet;
* :mod:`~attest.bench.loadgen`: the chip-side load generator (a separate process);
* :mod:`~attest.bench.e2e`: full sessions against a real ``attest verifier serve``
  (``e2e``, ``scale`` and ``soak``);
* :mod:`~attest.bench.timing`: a dudect-style leakage test of the verification core;
* :mod:`~attest.bench.report`: JSON, text and PNG output.

numpy, scipy and matplotlib come from the ``bench`` extra (``pip install 'hem-attest[bench]'``);
only the timing test and the plots need them.
"""
