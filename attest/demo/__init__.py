"""``attest demo``: a fleet of simulated chips, regional nodes and attacks, in one process."""
