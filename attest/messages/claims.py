"""The one table of claim keys used on the wire (SPEC.md §5 mirrors it).

Registered keys come from the CWT (RFC 8392), EAT (RFC 9711) and EAR (draft-ietf-rats-ear)
registries. Protocol-specific ("HEM") claims use private-use keys below -65536, as RFC 8392 §9.1
reserves for them. Every key here is either in [0, 65535] or at most -65537; for such key sets
RFC 8949 bytewise key order and length-first order coincide, which keeps deterministic encodings
unambiguous for implementers who use either rule.
"""

from __future__ import annotations

# CWT claims (RFC 8392)
ISS = 1
SUB = 2
AUD = 3
EXP = 4
NBF = 5
IAT = 6
CTI = 7
CNF = 8

# EAT claims (RFC 9711)
EAT_NONCE = 10
UEID = 256
OEMID = 258
HWMODEL = 259
UPTIME = 261
DBGSTAT = 263
LOCATION = 264
EAT_PROFILE = 265
SUBMODS = 266
BOOTCOUNT = 267
SWVERSION = 271
MEASUREMENTS = 273

# EAR claims (draft-ietf-rats-ear-04, CBOR serialization)
EAR_STATUS = 1000
EAR_TRUSTWORTHINESS_VECTOR = 1001
EAR_RAW_EVIDENCE = 1002
#: ear_appraisal_policy_ids: an array of policy ids, in the order they were applied
EAR_APPRAISAL_POLICY_IDS = 1003
EAR_VERIFIER_ID = 1004
EAR_VERIFIER_DEVELOPER = 0
EAR_VERIFIER_BUILD = 1

# Confirmation claim (RFC 8747) holding a COSE_Key (RFC 9052 §7, RFC 9053 OKP)
CNF_COSE_KEY = 1
COSE_KEY_KTY = 1
COSE_KEY_CRV = -1
COSE_KEY_X = -2
KTY_OKP = 1
CRV_ED25519 = 6

# Private-use HEM claims (RFC 8392 §9.1: keys below -65536)
HEM_REGION = -70001
HEM_ATTEST_COUNTER = -70002
HEM_METERS = -70003
# -70007 (hem-fw-measurement) was Evidence's firmware digest up to revision 2; it is retired
# (the digest travels in EAT measurements, 273) and never reused
#: DeviceCert: the pod size class the chip was certified for (Fixed Set)
HEM_POD_CLASS = -70008
HEM_REASONS = -70009
HEM_EVIDENCE_DIGEST = -70010
HEM_LIST_NUMBER = -70011
HEM_REVOKED_DEVICES = -70012
HEM_REVOKED_MANUFACTURERS = -70013
HEM_REVOKED_VERIFIERS = -70014
HEM_REVOKED_PODS = -70015
HEM_AUDIT_SEQ = -70016
HEM_AUDIT_HEAD = -70017
#: AttestationResult, inside the "hem" appraisal: the map of HEM result claims (iss, ueid,
#: reasons, evidence digest), one EAR appraisal extension (EAR extensions are maps)
HEM_RESULT = -70018
#: in hem-result, only for a chain routed through a federation agreement (SPEC B.5; keys of
#: federation's range -70400 .. -70499, declared here because results are core messages)
HEM_CHAIN_AUTHORITY = -70420
HEM_CHAIN_AGREEMENT = -70421
# ReferenceValues (a manufacturer's models and firmware reference values)
HEM_RV_NUMBER = -70020
HEM_RV_ISSUER_CERT = -70021
HEM_RV_MODELS = -70022
HEM_RV_FIRMWARE = -70023

#: RevocationList: revoked delegation ids (Offline Licensing's delegations; the authority's list
#: is one list for every kind of thing it revokes)
HEM_REVOKED_DELEGATIONS = -70105
# Mechanisms declare their own claim keys in their packages, each in its own range:
# Offline Licensing -70100 .. -70199 (attest/licensing/claims.py; also -70004 in Evidence),
# Fixed Set -70200 .. -70299 (attest/pods/claims.py; also -70005, -70006 in Evidence).

# Keys inside the HEM_METERS map
METER_FLOPS = 1
METER_ENERGY_MJ = 2
METER_INTERCONNECT_BYTES = 3

# EAT debug status values (RFC 9711 §4.2.9)
DBGSTAT_ENABLED = 0
DBGSTAT_DISABLED = 1
DBGSTAT_DISABLED_SINCE_BOOT = 2
DBGSTAT_DISABLED_PERMANENTLY = 3
DBGSTAT_DISABLED_FULLY_AND_PERMANENTLY = 4

#: EAT swversion scheme "multipartnumeric" (CoSWID version-scheme 1)
SWVERSION_SCHEME_MULTIPARTNUMERIC = 1

#: eat_profile of an attestation result: the EAR profile of draft-ietf-rats-ear-04
EAR_PROFILE = "tag:ietf.org,2026:rats/ear#04"
#: eat_profile of the "hem" appraisal inside a result: attest's own claims (SPEC §6.8)
HEM_APPRAISAL_PROFILE = "tag:attest.example,2026:hem-appraisal-v1"
#: eat_profile of Evidence (SPEC §6.7)
EVIDENCE_PROFILE = "tag:attest.example,2026:evidence-v1"

# EAT measurements (273) of Evidence: one CoSWID evidence tag (RFC 9393) of the running firmware
#: CoAP Content-Format of application/swid+cbor (RFC 9393 §6.2)
COAP_SWID_CBOR = 258
COSWID_TAG_ID = 0
COSWID_SOFTWARE_NAME = 1
COSWID_ENTITY = 2
COSWID_EVIDENCE = 3
COSWID_HASH = 7
COSWID_TAG_VERSION = 12
COSWID_SOFTWARE_VERSION = 13
COSWID_VERSION_SCHEME = 14
COSWID_FILE = 17
COSWID_FS_NAME = 24
COSWID_ENTITY_NAME = 31
COSWID_ROLE = 33
COSWID_ROLE_TAG_CREATOR = 1
#: Named Information Hash Algorithm Registry: sha-256
NI_SHA256 = 1


# -- names, for tools that print tokens (`attest inspect`); SPEC §5 is the normative table ----
def private_claim_names(namespace: dict[str, object]) -> dict[int, str]:
    """SPEC §5 names of the private-use claims a claims module defines: ``HEM_POD_ID = -70005``
    is ``hem-pod-id`` (pass ``vars(module)``; mechanisms declare theirs this way)."""
    return {
        v: k.lower().replace("_", "-")
        for k, v in namespace.items()
        if k.startswith("HEM_") and type(v) is int and v < -65536
    }


#: the registered (CWT, EAT, EAR) claims by key, with their registries' names
REGISTERED_NAMES: dict[int, str] = {
    ISS: "iss",
    SUB: "sub",
    AUD: "aud",
    EXP: "exp",
    NBF: "nbf",
    IAT: "iat",
    CTI: "cti",
    CNF: "cnf",
    EAT_NONCE: "eat_nonce",
    UEID: "ueid",
    OEMID: "oemid",
    HWMODEL: "hwmodel",
    UPTIME: "uptime",
    DBGSTAT: "dbgstat",
    LOCATION: "location",
    EAT_PROFILE: "eat_profile",
    SUBMODS: "submods",
    BOOTCOUNT: "bootcount",
    SWVERSION: "swversion",
    MEASUREMENTS: "measurements",
    EAR_STATUS: "ear_status",
    EAR_TRUSTWORTHINESS_VECTOR: "ear_trustworthiness_vector",
    EAR_RAW_EVIDENCE: "ear_raw_evidence",
    EAR_APPRAISAL_POLICY_IDS: "ear_appraisal_policy_ids",
    EAR_VERIFIER_ID: "ear_verifier_id",
}

_METER_NAMES = {
    METER_FLOPS: "flops",
    METER_ENERGY_MJ: "energy_mj",
    METER_INTERCONNECT_BYTES: "interconnect_bytes",
}
#: names of the members of map-valued core claims, by the claim's name (SPEC §5, §6.8, §10.1)
MEMBER_NAMES: dict[str, dict[int, str]] = {
    "cnf": {CNF_COSE_KEY: "COSE_Key"},
    "COSE_Key": {COSE_KEY_KTY: "kty", COSE_KEY_CRV: "crv", COSE_KEY_X: "x"},
    "hem-meters": _METER_NAMES,
    "ear_verifier_id": {EAR_VERIFIER_DEVELOPER: "developer", EAR_VERIFIER_BUILD: "build"},
    "ear_trustworthiness_vector": {
        0: "instance-identity",
        1: "configuration",
        2: "executables",
        3: "file-system",
        4: "hardware",
        5: "runtime-opaque",
        6: "storage-opaque",
        7: "sourced-data",
    },
}
#: budget maps (licences, delegations) use the meter keys
METER_NAMES = _METER_NAMES
#: CoSWID labels (RFC 9393) of the firmware tag inside ``measurements``
COSWID_NAMES: dict[int, str] = {
    v: k.removeprefix("COSWID_").lower().replace("_", "-")
    for k, v in list(globals().items())
    if k.startswith("COSWID_") and k != "COSWID_ROLE_TAG_CREATOR" and type(v) is int
}
