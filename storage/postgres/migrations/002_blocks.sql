-- blocks: counted runs of a collection's ids in id order, so that a scan reaches a deep offset by
-- summing a few hundred counts instead of stepping over every id before it. A block holds the
-- records whose ids are at or after its first_id and before the next block's; the first block
-- of a collection starts at the empty id. Writers keep n in step; a block grown past twice the
-- engine's block size is split in two.
CREATE TABLE blocks (
    tid      bigint NOT NULL,
    coll     text   NOT NULL,
    first_id bytea  NOT NULL,
    n        bigint NOT NULL,
    PRIMARY KEY (tid, coll, first_id)
);

INSERT INTO blocks (tid, coll, first_id, n)
SELECT tid, coll, CASE WHEN rn = 0 THEN '\x'::bytea ELSE id END, n
FROM (SELECT tid, coll, id, rn, count(*) OVER (PARTITION BY tid, coll, rn / 1024) AS n
      FROM (SELECT tid, coll, id, row_number() OVER (PARTITION BY tid, coll ORDER BY id) - 1 AS rn FROM records) x) y
WHERE rn % 1024 = 0;
