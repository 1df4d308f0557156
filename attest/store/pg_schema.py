"""The core schema of a PostgreSQL store (attest/store/postgres.py), version by version.

The same logical tables and versions as the SQLite store's (attest/store/sqlite.py), with what a
shared database needs on top: ``verifiers`` (the nodes that use it), ``verifier_id`` in the key
of ``audit`` and ``checkpoints`` (one chain per node) and ``audit_heads`` (each chain's head,
whose row lock serialises that node's appenders). SQLite's ``RAISE(ABORT)`` triggers become
PL/pgSQL trigger functions, with TRUNCATE guards that SQLite has no need for.
"""

from __future__ import annotations

from attest.store.migrations import Migration, check_list

SCHEMA_V1 = """
CREATE TABLE meta (
    key   text PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE verifiers (
    verifier_id text PRIMARY KEY CHECK (verifier_id <> ''),
    joined_ms   bigint NOT NULL
);

CREATE TABLE chips (
    ueid                     bytea PRIMARY KEY,
    device_key               bytea NOT NULL CHECK (length(device_key) = 32),
    device_cert              bytea NOT NULL,
    manufacturer_cert        bytea NOT NULL,
    hwmodel                  text NOT NULL,
    bootcount                bytea NOT NULL CHECK (length(bootcount) = 8),
    attest_counter           bytea NOT NULL CHECK (length(attest_counter) = 8),
    meter_flops              bytea NOT NULL CHECK (length(meter_flops) = 8),
    meter_energy_mj          bytea NOT NULL CHECK (length(meter_energy_mj) = 8),
    meter_interconnect_bytes bytea NOT NULL CHECK (length(meter_interconnect_bytes) = 8),
    last_challenge_iat       bigint NOT NULL,
    last_seen_ms             bigint NOT NULL,
    last_evidence_digest     bytea NOT NULL,
    status                   text NOT NULL CHECK (status IN ('active', 'revoked'))
);

CREATE TABLE challenges (
    nonce          bytea PRIMARY KEY,
    verifier_id    text NOT NULL,
    ueid           bytea,
    issued_at_ms   bigint NOT NULL,
    expires_at_ms  bigint NOT NULL,
    consumed_at_ms bigint
);
CREATE INDEX challenges_by_expiry ON challenges (expires_at_ms);

CREATE TABLE audit (
    verifier_id     text NOT NULL,
    seq             bigint NOT NULL CHECK (seq >= 1),
    time_ms         bigint NOT NULL,
    ueid            bytea NOT NULL,
    tier            bigint NOT NULL,
    reasons         bytea NOT NULL,
    evidence_digest bytea NOT NULL CHECK (length(evidence_digest) IN (0, 32)),
    nonce           bytea NOT NULL,
    kind            text NOT NULL,
    prev_hash       bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash            bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (verifier_id, seq)
);
CREATE INDEX audit_by_ueid ON audit (ueid);

CREATE TABLE audit_heads (
    verifier_id text PRIMARY KEY REFERENCES verifiers,
    seq         bigint NOT NULL CHECK (seq >= 0),
    hash        bytea NOT NULL CHECK (length(hash) = 32)
);

CREATE TABLE checkpoints (
    verifier_id text NOT NULL,
    seq         bigint NOT NULL CHECK (seq >= 1),
    head_hash   bytea NOT NULL CHECK (length(head_hash) = 32),
    iat         bigint NOT NULL,
    token       bytea NOT NULL,
    PRIMARY KEY (verifier_id, seq)
);

CREATE FUNCTION attest_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;

CREATE FUNCTION attest_audit_in_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq IS DISTINCT FROM (SELECT coalesce(max(seq), 0) + 1 FROM audit
                                 WHERE verifier_id = NEW.verifier_id) THEN
        RAISE EXCEPTION 'audit seq must follow the head';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER audit_in_order BEFORE INSERT ON audit
    FOR EACH ROW EXECUTE FUNCTION attest_audit_in_order();
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION attest_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION attest_append_only();
CREATE TRIGGER checkpoints_no_change BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION attest_append_only();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION attest_append_only();
"""

#: version 2 (as in SQLite): counters and meters only move forward; results found by nonce
SCHEMA_V2 = """
CREATE FUNCTION attest_chips_monotonic() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.bootcount < OLD.bootcount OR NEW.attest_counter < OLD.attest_counter
       OR NEW.meter_flops < OLD.meter_flops OR NEW.meter_energy_mj < OLD.meter_energy_mj
       OR NEW.meter_interconnect_bytes < OLD.meter_interconnect_bytes THEN
        RAISE EXCEPTION 'a chip''s counters and meters never go backwards';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER chips_monotonic BEFORE UPDATE ON chips
    FOR EACH ROW EXECUTE FUNCTION attest_chips_monotonic();
CREATE INDEX audit_by_nonce ON audit (verifier_id, nonce);
"""

#: version 3 (as in SQLite): every signed result token as sent, beside its audit entry
SCHEMA_V3 = """
CREATE TABLE results (
    verifier_id text NOT NULL,
    seq         bigint NOT NULL CHECK (seq >= 1),
    ueid        bytea NOT NULL,
    token       bytea NOT NULL,
    PRIMARY KEY (verifier_id, seq)
);
CREATE INDEX results_by_ueid ON results (verifier_id, ueid, seq);
CREATE TRIGGER results_no_change BEFORE UPDATE OR DELETE ON results
    FOR EACH ROW EXECUTE FUNCTION attest_append_only();
CREATE TRIGGER results_no_truncate BEFORE TRUNCATE ON results
    FOR EACH STATEMENT EXECUTE FUNCTION attest_append_only();
"""

#: the core schema of a PostgreSQL store, version by version (the same versions as SQLite's)
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1, "core tables: meta, verifiers, chips, challenges, audit chains, checkpoints", SCHEMA_V1
    ),
    Migration(
        2,
        "chips' counters and meters never go backwards (trigger); audit entries by nonce",
        SCHEMA_V2,
    ),
    Migration(3, "signed result tokens beside their audit entries", SCHEMA_V3),
)
check_list(MIGRATIONS)
SCHEMA_VERSION = MIGRATIONS[-1].version
