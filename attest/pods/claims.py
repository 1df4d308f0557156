"""Claim keys of the Fixed Set (SPEC §5 lists them with every other key).

Private-use keys -70200 .. -70299, plus -70005 and -70006 (pod id and links in Evidence,
allocated before the ranges were). Pod ids (-70005) are also claims of PodCert and of the link
proofs; the core DeviceCert's pod class (-70008) and RevocationList's revoked pods (-70015) are
core claims (attest.messages.claims).
"""

from __future__ import annotations

#: Evidence (optional), PodCert, link proofs: a 16-byte pod id
HEM_POD_ID = -70005
#: Evidence (optional): the chip's live full-bandwidth peers, as UEIDs
HEM_LINKS = -70006
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
