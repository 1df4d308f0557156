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

# EAR claims (draft-ietf-rats-ear, CBOR serialization)
EAR_STATUS = 1000
EAR_TRUSTWORTHINESS_VECTOR = 1001
EAR_RAW_EVIDENCE = 1002
EAR_APPRAISAL_POLICY_ID = 1003
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
HEM_LICENSE_STATE = -70004
HEM_POD_ID = -70005
HEM_LINKS = -70006
HEM_FW_MEASUREMENT = -70007
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

# -- Offline Licensing claims: keys -70100 .. -70199 (see attest/licensing)
HEM_LICENSE_SERIAL = -70100
HEM_LICENSE_BUDGETS = -70101
HEM_LICENSE_EXPIRY = -70102
HEM_DELEGATION_ID = -70103
HEM_DELEGATION_QUOTA = -70104
HEM_REVOKED_DELEGATIONS = -70105
#: key inside the HEM_LICENSE_STATE map: the chip's monotonic operating time (seconds)
LICENSE_STATE_CHIP_TIME = 3
# (budget and quota maps reuse the METER_* keys below: 1 flops, 2 energy_mj, 3 interconnect)
# -- end Offline Licensing claims
# -- Fixed Set (pods, links) claims: keys -70200 .. -70299 (see attest/pods)
#: PodCert: the members, as a sorted array of [ueid, Ed25519 device key]
HEM_POD_MEMBERS = -70200
#: PodCert: the pod's size class = the most chips it may hold and link (1, 8, 64 ...)
HEM_POD_SIZE_CLASS = -70201
#: LinkResponse / LinkConfirm: the two ends, their nonces, X25519 shares and pod certificates
HEM_LINK_INITIATOR = -70202
HEM_LINK_RESPONDER = -70203
HEM_LINK_INITIATOR_NONCE = -70204
HEM_LINK_RESPONDER_NONCE = -70205
HEM_LINK_INITIATOR_SHARE = -70206
HEM_LINK_RESPONDER_SHARE = -70207
HEM_LINK_INITIATOR_POD = -70208
HEM_LINK_RESPONDER_POD = -70209
#: LinkResponse / LinkConfirm: the signer accepts a full-bandwidth link (bool)
HEM_LINK_ACCEPT = -70210
#: Evidence (optional): peers' signed acceptances of links this chip refused
HEM_LINK_REFUSALS = -70211
# -- end Fixed Set claims

# Keys inside the HEM_LICENSE_STATE map
LICENSE_STATE_SERIAL = 1
LICENSE_STATE_REMAINING_FLOPS = 2

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

#: eat_profile of our attestation results
EAR_PROFILE = "tag:attest.example,2026:ear-v1"
