-- The first schema. Ids, keys and names the domain hands over are bytea: they may hold any
-- byte (a NUL is a valid key) and sort byte by byte, as the storage contract's id order says.
-- Times are Unix nanoseconds, so that a record's times equal the transaction's clock exactly.

-- tenants: one row per tenant. A write transaction locks its tenant's row (SELECT ... FOR
-- UPDATE), which serialises the tenant's writers; under that lock seq numbers the trail.
CREATE TABLE tenants (
    tid       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id        bytea  NOT NULL UNIQUE,
    doc       bytea  NOT NULL,           -- the storage.Tenant as JSON
    seq       bigint NOT NULL DEFAULT 0, -- the trail's greatest seq
    events    bigint NOT NULL DEFAULT 0, -- the trail's length
    last_time bigint NOT NULL DEFAULT 0  -- the newest event's time
);

CREATE TABLE tokens (
    id      bytea  PRIMARY KEY,
    hash    bytea  NOT NULL UNIQUE,
    tenant  bytea  NOT NULL,
    created bigint NOT NULL,
    doc     bytea  NOT NULL -- the storage.Token as JSON
);
CREATE INDEX tokens_by_tenant ON tokens (tenant, created);

CREATE TABLE records (
    tid      bigint NOT NULL,
    coll     text   NOT NULL,
    id       bytea  NOT NULL,
    doc      bytea  NOT NULL,
    secret   bytea,
    created  bigint NOT NULL,
    modified bigint NOT NULL,
    version  bigint NOT NULL,
    PRIMARY KEY (tid, coll, id)
);

-- entries: one row per index key of a record. A unique index's keys are unique in the
-- database too (entries_unique), behind the engine's own check.
CREATE TABLE entries (
    tid  bigint  NOT NULL,
    coll text    NOT NULL,
    idx  text    NOT NULL,
    key  bytea   NOT NULL,
    id   bytea   NOT NULL,
    uniq boolean NOT NULL,
    PRIMARY KEY (tid, coll, idx, key, id)
);
CREATE UNIQUE INDEX entries_unique ON entries (tid, coll, idx, key) WHERE uniq;
CREATE INDEX entries_by_record ON entries (tid, coll, id);

-- layout: the indexes the entries were built for; an index declared since, or declared
-- differently, is rebuilt at open.
CREATE TABLE layout (
    coll text    NOT NULL,
    idx  text    NOT NULL,
    uniq boolean NOT NULL,
    fold boolean NOT NULL,
    PRIMARY KEY (coll, idx)
);

-- counts: Count and Deletes in O(1).
CREATE TABLE counts (
    tid     bigint NOT NULL,
    coll    text   NOT NULL,
    count   bigint NOT NULL,
    deletes bigint NOT NULL,
    PRIMARY KEY (tid, coll)
);

CREATE TABLE members (
    tid     bigint NOT NULL,
    grp     bytea  NOT NULL,
    member  bytea  NOT NULL,
    type    bytea  NOT NULL,
    display bytea  NOT NULL,
    PRIMARY KEY (tid, grp, member)
);
CREATE INDEX members_of ON members (tid, member, grp);

CREATE TABLE facts (
    tid bigint NOT NULL,
    uid bytea  NOT NULL,
    doc bytea  NOT NULL, -- the storage.Facts as JSON
    PRIMARY KEY (tid, uid)
);

-- participants: every campaign a user was ever assigned to; current while assigned.
CREATE TABLE participants (
    tid      bigint  NOT NULL,
    uid      bytea   NOT NULL,
    campaign bytea   NOT NULL,
    current  boolean NOT NULL,
    PRIMARY KEY (tid, uid, campaign)
);

CREATE TABLE events (
    tid      bigint NOT NULL,
    seq      bigint NOT NULL,
    time     bigint NOT NULL,
    resource bytea  NOT NULL,
    doc      bytea  NOT NULL, -- the event's other fields as JSON
    PRIMARY KEY (tid, seq)
);
CREATE INDEX events_by_resource ON events (tid, resource, seq) WHERE resource <> '\x';

-- erasures: users whose personal data a transaction overwrote (Tx.Erased).
CREATE TABLE erasures (
    tid bigint NOT NULL,
    uid bytea  NOT NULL,
    at  bigint NOT NULL
);
