"""Federation: several authorities, one coalition (SPEC Appendix B).

* ``sign`` — COSE_Sign (tag 98) acts with one COSE_Signature per officer, the strict check;
* ``committee`` — k-of-n committee descriptors, genesis and rotation;
* ``agreement`` — federation agreements: members, thresholds, what each recognises of whom;
* ``reasons`` — its reason codes (190-219); ``claims`` — its claim keys (-70400 .. -70499).
"""
