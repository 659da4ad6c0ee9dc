package postgres

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scimserver/scimserver/storage"
)

// tx is a transaction's view of one tenant's data.
type tx struct {
	s      *Store
	ctx    context.Context
	q      *conn
	tenant string
	tid    int64
	now    time.Time
	write  bool
	// The tenant's trail counters as of the transaction, advanced by its appends and written
	// back at flush.
	seq, events int64
	lastTime    int64
	headRead    bool // the counters above were read (always so in a write)
	appended    bool
	counts      map[string]*count
	blocks      map[[2]string]int64 // coll and a block's first id -> change of its count
	// changed holds the records this transaction inserted, updated or touched (coll 0 id):
	// they get no second new version in it.
	changed map[string]bool
	// fetched holds, in a read-only transaction, what Get read beside each record: the reads
	// that render a record ask for its groups and facts next, and one statement serves all three.
	fetched map[string]beside
	// ahead holds, in a read-only transaction, the records Get read, and records read before
	// they were asked for, by changeKey: the groups of the records in fetched, whose names
	// rendering those records reads next, are read together at the first Get of one of them. A
	// nil record was looked for and is not stored.
	ahead   map[string]*storage.Record
	pending map[string]bool // groups of the records in fetched not yet read
	prep    *prepared       // see PrepareMembers
	// factsRead holds, in a write, the facts read with each record Get read, until the write
	// changes them; each write of a batch starts without them.
	factsRead map[string][]byte
}

type beside struct {
	groups []string
	facts  []byte // nil when none are stored
}

// count is a collection's Count and Deletes: as stored, and this transaction's changes.
type count struct {
	n, deletes   int64 // as stored, once read
	read         bool
	dn, ddeletes int64
}

var _ storage.Tx = (*tx)(nil)

// open starts the view of tenant. In a write it locks the tenant's row first, and waits for the
// tenant's other writers to commit: its statements then see every write committed before it,
// and none commits before it does (READ COMMITTED reads the newest committed data at each
// statement, which no other writer of the tenant can change while the lock is held).
//
// A read of a tenant this process has seen before sends nothing yet: a tenant's row number never
// changes (tenants are never deleted), and the trail counters are read when asked for
// (TrailLength), in the read's snapshot. Its Now is then this process's clock, which may read
// a little before the time of an event another process committed just before the read.
func (s *Store) open(ctx context.Context, q *conn, tenant string, write bool, now time.Time) (*tx, error) {
	t := &tx{s: s, ctx: ctx, q: q, tenant: tenant, write: write, counts: map[string]*count{}, changed: map[string]bool{}}
	if tid, ok := s.tids.Load(tenant); ok && !write {
		t.tid = tid.(int64)
	} else if err := t.readHead("id = $1", []byte(tenant)); err != nil {
		return nil, err
	} else if !write { // a write's tenant may yet roll back with it
		s.tids.Store(tenant, t.tid)
	}
	t.now = now
	if now.IsZero() {
		t.now = s.now(t.lastTime)
	}
	return t, nil
}

// head reads the tenant's trail counters, for a read that opened without them.
func (t *tx) head() error {
	if t.headRead {
		return nil
	}
	return t.readHead("tid = $1", t.tid)
}

// readHead reads the tenant's row number and trail counters from the row where matches arg,
// locking it in a write.
func (t *tx) readHead(where string, arg any) error {
	query := "SELECT tid, seq, events, last_time FROM tenants WHERE " + where
	if t.write {
		query += " FOR UPDATE"
	}
	err := t.q.QueryRow(t.ctx, query, arg).Scan(&t.tid, &t.seq, &t.events, &t.lastTime)
	if err == pgx.ErrNoRows {
		return storage.Errorf(storage.NotFound, "the tenant does not exist")
	}
	if err != nil {
		return dbError(err)
	}
	t.headRead = true
	return nil
}

func (t *tx) Tenant() string { return t.tenant }
func (t *tx) Now() time.Time { return t.now }

func (t *tx) mustWrite() error {
	if !t.write {
		return storage.Errorf(storage.Invalid, "a read transaction cannot write")
	}
	return nil
}

// coll resolves a declared collection: the declaration the store was opened with.
func (t *tx) coll(c *storage.Collection) (*storage.Collection, error) {
	if d := t.s.colls[c.Name]; d != nil {
		return d, nil
	}
	return nil, storage.Errorf(storage.Invalid, "collection %s is not declared", c.Name)
}

func index(c *storage.Collection, name string) (*storage.Index, error) {
	if i := c.Index(name); i >= 0 {
		return &c.Indexes[i], nil
	}
	return nil, storage.Errorf(storage.Invalid, "collection %s has no index %s", c.Name, name)
}

// flush writes the transaction's counters and trail position back, and announces an append to
// every process's watchers (PostgreSQL delivers the notification at commit, and never for a
// transaction rolled back).
func (t *tx) flush() error {
	if err := t.flushBlocks(); err != nil {
		return err
	}
	b := &pgx.Batch{}
	for name, c := range t.counts {
		if c.dn != 0 || c.ddeletes != 0 {
			b.Queue(`INSERT INTO counts (tid, coll, count, deletes) VALUES ($1, $2, $3, $4)
				ON CONFLICT (tid, coll) DO UPDATE SET count = counts.count + excluded.count, deletes = counts.deletes + excluded.deletes`,
				t.tid, name, c.dn, c.ddeletes)
		}
	}
	if t.appended {
		b.Queue(`WITH u AS (UPDATE tenants SET seq = $2, events = $3, last_time = $4 WHERE tid = $1)
			SELECT pg_notify($5, $6)`, t.tid, t.seq, t.events, t.lastTime, t.s.channel, t.tenant)
	}
	if b.Len() == 0 {
		return nil
	}
	return dbError(t.q.SendBatch(t.ctx, b).Close())
}

// delta is c's count in this transaction, without its stored figures unless already read:
// a write changes the count without asking for it.
func (t *tx) delta(c *storage.Collection) *count {
	if n := t.counts[c.Name]; n != nil {
		return n
	}
	n := &count{}
	t.counts[c.Name] = n
	return n
}

// count is c's count with its stored figures read.
func (t *tx) count(c *storage.Collection) *count {
	n := t.delta(c)
	if n.read {
		return n
	}
	err := t.q.QueryRow(t.ctx, "SELECT count, deletes FROM counts WHERE tid = $1 AND coll = $2", t.tid, c.Name).Scan(&n.n, &n.deletes)
	if err != nil && err != pgx.ErrNoRows {
		return n // not read: the next call asks again, and a write's commit fails anyway
	}
	n.read = true
	return n
}

func (t *tx) Count(c *storage.Collection) int {
	d, err := t.coll(c)
	if err != nil {
		return 0
	}
	n := t.count(d)
	return int(max(0, n.n+n.dn))
}

func (t *tx) Deletes(c *storage.Collection) uint64 {
	d, err := t.coll(c)
	if err != nil {
		return 0
	}
	n := t.count(d)
	return uint64(max(0, n.deletes+n.ddeletes))
}

func changeKey(c *storage.Collection, id string) string { return c.Name + "\x00" + id }

const recordColumns = "id, doc, secret, created, modified, version"

// besideColumns follow recordColumns, in a read-only transaction, with what rendering a record
// reads next: its groups and its facts. Read with the record, they save two statements per
// record shown (see fetched).
const besideColumns = `,
	ARRAY(SELECT grp FROM members WHERE members.tid = records.tid AND members.member = records.id ORDER BY grp)` + factsColumn

// factsColumn follows recordColumns with the record's facts. A write reads them with the record
// too (see factsRead): a write that answers with the record shows its facts, read in the commit.
const factsColumn = `,
	(SELECT doc FROM facts WHERE facts.tid = records.tid AND facts.uid = records.id)`

// fetchedScan bounds the records of a scan read with besideColumns: the pages a scan renders
// are its first records, and a scan that filters every record would otherwise pay for them all.
const fetchedScan = 1024

// scanRecord reads a row of recordColumns, and of more columns into more.
func scanRecord(row pgx.Row, more ...any) (storage.Record, error) {
	var r storage.Record
	var id []byte
	var created, modified, version int64
	if err := row.Scan(append([]any{&id, &r.Doc, &r.Secret, &created, &modified, &version}, more...)...); err != nil {
		return r, err
	}
	r.ID = string(id)
	r.Created, r.Modified, r.Version = time.Unix(0, created).UTC(), time.Unix(0, modified).UTC(), uint64(version)
	return r, nil
}

// recordReader gives the columns that read a record, with besideColumns when fetch, and what
// reads a row of them.
func (t *tx) recordReader(fetch bool) (string, func(pgx.Row) (storage.Record, error)) {
	if !fetch {
		return recordColumns, func(row pgx.Row) (storage.Record, error) { return scanRecord(row) }
	}
	return recordColumns + besideColumns, func(row pgx.Row) (storage.Record, error) {
		var groups [][]byte
		var b beside
		r, err := scanRecord(row, &groups, &b.facts)
		if err != nil {
			return r, err
		}
		for _, g := range groups {
			b.groups = append(b.groups, string(g))
		}
		if t.fetched == nil {
			t.fetched, t.pending = map[string]beside{}, map[string]bool{}
		}
		t.fetched[r.ID] = b
		for _, g := range b.groups {
			t.pending[g] = true
		}
		return r, nil
	}
}

func (t *tx) Get(c *storage.Collection, id string) (storage.Record, error) {
	d, err := t.coll(c)
	if err != nil {
		return storage.Record{}, err
	}
	if r, ok, err := t.readAhead(d, id); ok {
		return r, err
	}
	const where = " FROM records WHERE tid = $1 AND coll = $2 AND id = $3"
	if t.write {
		var facts []byte
		r, err := scanRecord(t.q.QueryRow(t.ctx, "SELECT "+recordColumns+factsColumn+where, t.tid, d.Name, []byte(id)), &facts)
		if err == nil {
			if t.factsRead == nil {
				t.factsRead = map[string][]byte{}
			}
			t.factsRead[id] = facts
		}
		return r, getError(err)
	}
	columns, scan := t.recordReader(true)
	r, err := scan(t.q.QueryRow(t.ctx, "SELECT "+columns+where, t.tid, d.Name, []byte(id)))
	switch err {
	case nil:
		t.keep(d, id, &r)
	case pgx.ErrNoRows:
		t.keep(d, id, nil)
	}
	return r, getError(err)
}

// keep notes, in a read-only transaction, the record of collection d with id as read (nil: not
// stored), so that a second Get of it is answered from its snapshot without a statement: a
// lookup reads the record it found to match it, then again to render it.
func (t *tx) keep(d *storage.Collection, id string, r *storage.Record) {
	if t.ahead == nil {
		t.ahead = map[string]*storage.Record{}
	}
	t.ahead[changeKey(d, id)] = r
	delete(t.pending, id)
}

// getError is the error of a Get that read err.
func getError(err error) error {
	if err == pgx.ErrNoRows {
		return storage.Errorf(storage.NotFound, "no such record")
	}
	return dbError(err)
}

// readAhead answers a Get from what the read has read (ok): a record Get read before, or a group
// of the records read so far, reading every such group not yet read in one statement (a page of
// users in groups costs one statement for their groups, not one per group of each user).
func (t *tx) readAhead(d *storage.Collection, id string) (storage.Record, bool, error) {
	if t.write {
		return storage.Record{}, false, nil
	}
	r, ok := t.ahead[changeKey(d, id)]
	if !ok {
		if !t.pending[id] {
			return storage.Record{}, false, nil
		}
		ids := make([][]byte, 0, len(t.pending))
		for g := range t.pending { // keep takes every record read out of pending
			ids = append(ids, []byte(g))
		}
		if err := t.readRecords(d, ids); err != nil {
			return storage.Record{}, true, err
		}
		r = t.ahead[changeKey(d, id)]
	}
	if r == nil {
		return storage.Record{}, true, storage.Errorf(storage.NotFound, "no such record")
	}
	return *r, true, nil
}

// recordsByID reads the records of a collection with the given ids, looked up one by one as
// PrepareMembers looks up members (membersAmong).
const recordsByID = "SELECT " + recordColumns + ` FROM unnest($3::bytea[]) AS x(want)
	CROSS JOIN LATERAL (SELECT ` + recordColumns + " FROM records WHERE tid = $1 AND coll = $2 AND id = x.want LIMIT 1) r"

// readRecords reads the records of collection d with the given ids, and keeps them.
func (t *tx) readRecords(d *storage.Collection, ids [][]byte) error {
	rows, err := t.q.Query(t.ctx, recordsByID, t.tid, d.Name, ids)
	if err != nil {
		return dbError(err)
	}
	recs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.Record, error) { return scanRecord(row) })
	if err != nil {
		return dbError(err)
	}
	for _, id := range ids {
		t.keep(d, string(id), nil)
	}
	for i := range recs {
		t.keep(d, recs[i].ID, &recs[i])
	}
	return nil
}

func (t *tx) Exists(c *storage.Collection, id string) bool {
	d, err := t.coll(c)
	if err != nil {
		return false
	}
	if exists, ok := t.prep.record(d, id); ok {
		return exists
	}
	var ok bool
	err = t.q.QueryRow(t.ctx, "SELECT EXISTS (SELECT 1 FROM records WHERE tid = $1 AND coll = $2 AND id = $3)",
		t.tid, d.Name, []byte(id)).Scan(&ok)
	return err == nil && ok
}

// keyLists are a record's index entries as statement arguments: one element per entry.
type keyLists struct {
	idx  []string
	key  [][]byte
	uniq []bool
	// taken lists the unique ones, checked for another owner before anything is written.
	takenIdx []*string
	takenKey [][]byte
}

// entriesOf normalises a record's keys (Record.Keys, in the order of the declared indexes).
func entriesOf(d *storage.Collection, keys [][]string) (keyLists, error) {
	var l keyLists
	for i := range d.Indexes {
		ix := &d.Indexes[i]
		if i >= len(keys) {
			break
		}
		for _, k := range normalise(ix, keys[i]) {
			if len(k) > storage.MaxKeyLen {
				return l, storage.Errorf(storage.Invalid, "an indexed value (%s) is longer than %d bytes", ix.Name, storage.MaxKeyLen)
			}
			l.idx, l.key, l.uniq = append(l.idx, ix.Name), append(l.key, []byte(k)), append(l.uniq, ix.Unique)
			if ix.Unique {
				l.takenIdx, l.takenKey = append(l.takenIdx, &ix.Name), append(l.takenKey, []byte(k))
			}
		}
	}
	return l, nil
}

// normalise folds keys as the index says and drops empty and repeated ones.
func normalise(ix *storage.Index, keys []string) []string { return ix.NormalKeys(keys) }

// The statements that write a record do it whole in one round trip: the check that no other
// record holds its unique key (taken), then, only when none does, the record and its entries.
// The tenant's row lock keeps the check true until the commit; entries_unique stands behind it.
// The check is an equality on every column of entries_unique, which the planner answers through
// that index whatever its statistics say (matching a list of keys, through a join or = ANY, was
// planned as a scan of the collection's whole index while the table's statistics were young);
// a record with more than one unique key has the others checked first (uniqueTaken).
const takenCTE = `taken AS (
	SELECT idx FROM entries WHERE tid = $1 AND coll = $2 AND idx = $5::text AND key = $6::bytea AND uniq AND id <> $3)`

const insertSQL = `WITH ` + takenCTE + `,
	r AS (INSERT INTO records (tid, coll, id, doc, secret, created, modified, version)
		SELECT $1, $2, $3, $4, $10, $11, $12, $13 WHERE NOT EXISTS (SELECT 1 FROM taken)
		ON CONFLICT DO NOTHING RETURNING 1),
	e AS (INSERT INTO entries (tid, coll, idx, key, id, uniq)
		SELECT $1, $2, i, k, $3, u FROM unnest($7::text[], $8::bytea[], $9::bool[]) AS x(i, k, u)
		WHERE EXISTS (SELECT 1 FROM r))
	SELECT (SELECT idx FROM taken), (SELECT count(*) FROM r), ` + blockOf

// blockOf selects the first id of the block of the id order that holds id $3: the empty id
// for the first block, which a collection's first record creates.
const blockOf = `coalesce((SELECT first_id FROM blocks WHERE tid = $1 AND coll = $2 AND first_id <= $3
	ORDER BY first_id DESC LIMIT 1), '\x'::bytea)`

// updateSQL replaces a record and moves its entries: those it no longer has go, new ones come
// (ON CONFLICT keeps those it had). $14 is the version step: 0 when this transaction already
// gave the record its new version. With $15 the created, modified and version are set as given
// (an import), and a missing record is inserted.
const updateSQL = `WITH ` + takenCTE + `,
	r AS (UPDATE records SET doc = $4, secret = $10, modified = $12,
			version = CASE WHEN $15 THEN $13 ELSE version + $14 END, created = CASE WHEN $15 THEN $11 ELSE created END
		WHERE tid = $1 AND coll = $2 AND id = $3 AND NOT EXISTS (SELECT 1 FROM taken)
		RETURNING created, version),
	d AS (DELETE FROM entries WHERE tid = $1 AND coll = $2 AND id = $3 AND EXISTS (SELECT 1 FROM r)
		AND (idx, key) NOT IN (SELECT i, k FROM unnest($7::text[], $8::bytea[]) AS x(i, k))),
	e AS (INSERT INTO entries (tid, coll, idx, key, id, uniq)
		SELECT $1, $2, i, k, $3, u FROM unnest($7::text[], $8::bytea[], $9::bool[]) AS x(i, k, u)
		WHERE EXISTS (SELECT 1 FROM r) ON CONFLICT DO NOTHING)
	SELECT (SELECT idx FROM taken), (SELECT created FROM r), (SELECT version FROM r)`

func (t *tx) Insert(c *storage.Collection, r storage.Record) (storage.Record, error) {
	d, err := t.coll(c)
	if err != nil {
		return r, err
	}
	if err := t.mustWrite(); err != nil {
		return r, err
	}
	if err := storage.CheckID(r.ID); err != nil {
		return r, err
	}
	l, err := entriesOf(d, r.Keys)
	if err != nil {
		return r, err
	}
	if err := t.insert(d, r, l, t.now, t.now, 1); err != nil {
		return r, err
	}
	t.changed[changeKey(d, r.ID)] = true
	r.Created, r.Modified, r.Version = t.now, t.now, 1
	return r, nil
}

// uniqueTaken checks the unique keys after the first (which the statement writing the record
// checks) for another owner, and returns the first key's index and key, nil for none.
func (t *tx) uniqueTaken(d *storage.Collection, id string, l keyLists) (*string, []byte, error) {
	if len(l.takenIdx) == 0 {
		return nil, nil, nil
	}
	for i := 1; i < len(l.takenIdx); i++ {
		var taken bool
		err := t.q.QueryRow(t.ctx, "SELECT EXISTS (SELECT 1 FROM entries WHERE tid = $1 AND coll = $2 AND idx = $3 AND key = $4 AND uniq AND id <> $5)",
			t.tid, d.Name, *l.takenIdx[i], l.takenKey[i], []byte(id)).Scan(&taken)
		if err != nil {
			return nil, nil, dbError(err)
		}
		if taken {
			return nil, nil, storage.Errorf(storage.Conflict, "%s is already taken", *l.takenIdx[i])
		}
	}
	return l.takenIdx[0], l.takenKey[0], nil
}

// insert runs insertSQL: Conflict when another record holds one of r's unique keys or r's id.
func (t *tx) insert(d *storage.Collection, r storage.Record, l keyLists, created, modified time.Time, version uint64) error {
	t.prep = nil // it may make a member's record
	idx, key, err := t.uniqueTaken(d, r.ID, l)
	if err != nil {
		return err
	}
	var taken *string
	var inserted int64
	var block []byte
	err = t.q.QueryRow(t.ctx, insertSQL, t.tid, d.Name, []byte(r.ID), []byte(r.Doc), idx, key, l.idx, l.key, l.uniq,
		r.Secret, created.UnixNano(), modified.UnixNano(), int64(version)).Scan(&taken, &inserted, &block)
	switch {
	case err != nil:
		return dbError(err)
	case taken != nil:
		return storage.Errorf(storage.Conflict, "%s is already taken", *taken)
	case inserted == 0:
		return storage.Errorf(storage.Conflict, "a record with that id already exists")
	}
	t.delta(d).dn++
	t.moveBlock(d, block, 1)
	return nil
}

// blockSize is the number of ids a block of the id order holds after a split; it splits when
// it holds twice that.
const blockSize = 1024

// moveBlock notes a change of a block's count, written at flush: a block row updated on every
// insert would grow a chain of row versions that each later lookup in the transaction walks.
func (t *tx) moveBlock(d *storage.Collection, first []byte, delta int64) {
	if t.blocks == nil {
		t.blocks = map[[2]string]int64{}
	}
	t.blocks[[2]string{d.Name, string(first)}] += delta
}

// flushBlocks writes the blocks' count changes, splitting each block grown past twice the
// block size.
func (t *tx) flushBlocks() error {
	for k, delta := range t.blocks {
		var n int64
		err := t.q.QueryRow(t.ctx, `INSERT INTO blocks (tid, coll, first_id, n) VALUES ($1, $2, $3, $4)
			ON CONFLICT (tid, coll, first_id) DO UPDATE SET n = blocks.n + excluded.n RETURNING n`, t.tid, k[0], []byte(k[1]), delta).Scan(&n)
		if err != nil {
			return dbError(err)
		}
		if err := t.split(k[0], []byte(k[1]), n); err != nil {
			return err
		}
	}
	t.blocks = nil
	return nil
}

// split divides a block of n ids at its middle id, and the halves again while they are too big.
func (t *tx) split(coll string, first []byte, n int64) error {
	if n <= 2*blockSize {
		return nil
	}
	var mid []byte
	err := t.q.QueryRow(t.ctx, "SELECT id FROM records WHERE tid = $1 AND coll = $2 AND id >= $3 ORDER BY id OFFSET $4 LIMIT 1",
		t.tid, coll, first, n/2).Scan(&mid)
	if err != nil {
		return dbError(err)
	}
	_, err = t.q.Exec(t.ctx, `WITH u AS (UPDATE blocks SET n = $4 WHERE tid = $1 AND coll = $2 AND first_id = $3)
		INSERT INTO blocks (tid, coll, first_id, n) VALUES ($1, $2, $5, $6)`, t.tid, coll, first, n/2, mid, n-n/2)
	if err != nil {
		return dbError(err)
	}
	if err := t.split(coll, first, n/2); err != nil {
		return err
	}
	return t.split(coll, mid, n-n/2)
}

func (t *tx) Update(c *storage.Collection, r storage.Record) (storage.Record, error) {
	d, err := t.coll(c)
	if err != nil {
		return r, err
	}
	if err := t.mustWrite(); err != nil {
		return r, err
	}
	step := 1
	if t.changed[changeKey(d, r.ID)] {
		step = 0
	}
	created, version, err := t.replace(d, r, t.now, 0, step, false)
	if err != nil {
		return r, err
	}
	t.changed[changeKey(d, r.ID)] = true
	r.Created, r.Modified, r.Version = created, t.now, version
	return r, nil
}

// replace runs updateSQL: the record's stored created time and version after it, NotFound when
// there is no record, Conflict when another holds one of its unique keys.
func (t *tx) replace(d *storage.Collection, r storage.Record, modified time.Time, version uint64, step int, exact bool) (time.Time, uint64, error) {
	l, err := entriesOf(d, r.Keys)
	if err != nil {
		return time.Time{}, 0, err
	}
	idx, key, err := t.uniqueTaken(d, r.ID, l)
	if err != nil {
		return time.Time{}, 0, err
	}
	var taken *string
	var created, v *int64
	err = t.q.QueryRow(t.ctx, updateSQL, t.tid, d.Name, []byte(r.ID), []byte(r.Doc), idx, key, l.idx, l.key, l.uniq,
		r.Secret, r.Created.UnixNano(), modified.UnixNano(), int64(version), step, exact).Scan(&taken, &created, &v)
	switch {
	case err != nil:
		return time.Time{}, 0, dbError(err)
	case taken != nil:
		return time.Time{}, 0, storage.Errorf(storage.Conflict, "%s is already taken", *taken)
	case created == nil:
		return time.Time{}, 0, storage.Errorf(storage.NotFound, "no such record")
	}
	return time.Unix(0, *created).UTC(), uint64(*v), nil
}

func (t *tx) Touch(c *storage.Collection, id string) error {
	d, err := t.coll(c)
	if err != nil {
		return err
	}
	if err := t.mustWrite(); err != nil {
		return err
	}
	if t.changed[changeKey(d, id)] {
		return nil
	}
	const touch = "UPDATE records SET version = version + 1, modified = $4 WHERE tid = $1 AND coll = $2 AND id = $3"
	switch exists, known := t.prep.record(d, id); {
	case known && !exists:
		return storage.Errorf(storage.NotFound, "no such record")
	case known:
		t.q.hold(touch, t.tid, d.Name, []byte(id), t.now.UnixNano())
	default:
		tag, err := t.q.Exec(t.ctx, touch, t.tid, d.Name, []byte(id), t.now.UnixNano())
		if err != nil {
			return dbError(err)
		}
		if tag.RowsAffected() == 0 {
			return storage.Errorf(storage.NotFound, "no such record")
		}
	}
	t.changed[changeKey(d, id)] = true
	return nil
}

func (t *tx) Delete(c *storage.Collection, id string) error {
	d, err := t.coll(c)
	if err != nil {
		return err
	}
	if err := t.mustWrite(); err != nil {
		return err
	}
	t.prep = nil // it may end a member's record
	var deleted int64
	var block []byte
	err = t.q.QueryRow(t.ctx, `WITH r AS (DELETE FROM records WHERE tid = $1 AND coll = $2 AND id = $3 RETURNING 1),
		e AS (DELETE FROM entries WHERE tid = $1 AND coll = $2 AND id = $3 AND EXISTS (SELECT 1 FROM r))
		SELECT (SELECT count(*) FROM r), `+blockOf, t.tid, d.Name, []byte(id)).Scan(&deleted, &block)
	if err != nil {
		return dbError(err)
	}
	if deleted == 0 {
		return storage.Errorf(storage.NotFound, "no such record")
	}
	n := t.delta(d)
	n.dn--
	n.ddeletes++
	t.moveBlock(d, block, -1)
	delete(t.changed, changeKey(d, id))
	return nil
}

func (t *tx) Lookup(c *storage.Collection, name, key string) ([]string, error) {
	d, err := t.coll(c)
	if err != nil {
		return nil, err
	}
	ix, err := index(d, name)
	if err != nil {
		return nil, err
	}
	if ix.Fold {
		key = storage.Fold(key)
	}
	// No ORDER BY: asked for id order, the planner may walk the collection's entries in id order
	// (entries_by_record) and filter them, where the primary key finds the key's few entries.
	rows, err := t.q.Query(t.ctx, "SELECT id FROM entries WHERE tid = $1 AND coll = $2 AND idx = $3 AND key = $4",
		t.tid, d.Name, ix.Name, []byte(key))
	if err != nil {
		return nil, dbError(err)
	}
	ids, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (string, error) {
		var id []byte
		err := row.Scan(&id)
		return string(id), err
	})
	slices.Sort(ids)
	return ids, dbError(err)
}

// Scans read in chunks, each fully before fn runs, so that fn may use the transaction; a chunk
// grows from the first so that a scan fn stops early reads little. A scan that says how many
// records it wants (Position.Want) reads that many at first.
const (
	firstChunk = 32
	maxChunk   = 1024
)

func (t *tx) Scan(c *storage.Collection, from storage.Position, fn func(storage.Record) (bool, error)) error {
	d, err := t.coll(c)
	if err != nil {
		return err
	}
	after, offset := []byte(nil), from.Offset
	start := []byte(from.From)
	if offset > 0 {
		if offset > 2*blockSize {
			// A deep offset: the block it falls in, from the blocks' counts, then the steps
			// within that block.
			if err := t.flushBlocks(); err != nil {
				return err
			}
			err := t.q.QueryRow(t.ctx, `WITH c AS (SELECT coalesce((SELECT first_id FROM blocks WHERE tid = $1 AND coll = $2 AND first_id <= $3
					ORDER BY first_id DESC LIMIT 1), '\x'::bytea) AS f),
				target AS (SELECT $4::bigint + coalesce((SELECT sum(n) FROM blocks, c WHERE tid = $1 AND coll = $2 AND first_id < c.f), 0)
					+ (SELECT count(*) FROM records, c WHERE tid = $1 AND coll = $2 AND id >= c.f AND id < $3) AS at),
				b AS (SELECT first_id, sum(n) OVER (ORDER BY first_id) - n AS before, sum(n) OVER (ORDER BY first_id) AS upto
					FROM blocks WHERE tid = $1 AND coll = $2)
				SELECT b.first_id, target.at - b.before FROM b, target WHERE b.upto > target.at ORDER BY b.first_id LIMIT 1`,
				t.tid, d.Name, start, offset).Scan(&start, &offset)
			if err == pgx.ErrNoRows {
				return nil
			}
			if err != nil {
				return dbError(err)
			}
		}
		// Step over the offset through the primary key alone (an index-only scan), not the
		// documents.
		var id []byte
		err := t.q.QueryRow(t.ctx, "SELECT id FROM records WHERE tid = $1 AND coll = $2 AND id >= $3 ORDER BY id OFFSET $4 LIMIT 1",
			t.tid, d.Name, start, offset).Scan(&id)
		if err == pgx.ErrNoRows {
			return nil
		}
		if err != nil {
			return dbError(err)
		}
		start = id
	}
	read := 0
	for chunk := min(max(from.Want, firstChunk), maxChunk); ; chunk = min(4*chunk, maxChunk) {
		columns, scan := t.recordReader(!t.write && read < fetchedScan)
		var rows pgx.Rows
		if after == nil {
			rows, err = t.q.Query(t.ctx, "SELECT "+columns+" FROM records WHERE tid = $1 AND coll = $2 AND id >= $3 ORDER BY id LIMIT $4",
				t.tid, d.Name, start, chunk)
		} else {
			rows, err = t.q.Query(t.ctx, "SELECT "+columns+" FROM records WHERE tid = $1 AND coll = $2 AND id > $3 ORDER BY id LIMIT $4",
				t.tid, d.Name, after, chunk)
		}
		if err != nil {
			return dbError(err)
		}
		recs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.Record, error) { return scan(row) })
		if err != nil {
			return dbError(err)
		}
		read += len(recs)
		for _, r := range recs {
			more, err := fn(r)
			if err != nil || !more {
				return err
			}
		}
		if len(recs) < chunk {
			return nil
		}
		after = []byte(recs[len(recs)-1].ID)
	}
}

func (t *tx) ScanIndex(c *storage.Collection, name string, descending bool, skip int, fn func(id string) (bool, error)) error {
	d, err := t.coll(c)
	if err != nil {
		return err
	}
	ix, err := index(d, name)
	if err != nil {
		return err
	}
	if !ix.Unique {
		return storage.Errorf(storage.Invalid, "the index %s.%s cannot be scanned in key order", c.Name, name)
	}
	order, beyond := "ASC", ">"
	if descending {
		order, beyond = "DESC", "<"
	}
	var after []byte
	for chunk := firstChunk; ; chunk = min(4*chunk, maxChunk) {
		var rows pgx.Rows
		if after == nil {
			rows, err = t.q.Query(t.ctx, "SELECT key, id FROM entries WHERE tid = $1 AND coll = $2 AND idx = $3 AND uniq ORDER BY key "+order+" OFFSET $4 LIMIT $5",
				t.tid, d.Name, ix.Name, skip, chunk)
		} else {
			rows, err = t.q.Query(t.ctx, "SELECT key, id FROM entries WHERE tid = $1 AND coll = $2 AND idx = $3 AND uniq AND key "+beyond+" $4 ORDER BY key "+order+" LIMIT $5",
				t.tid, d.Name, ix.Name, after, chunk)
		}
		if err != nil {
			return dbError(err)
		}
		type entry struct{ key, id []byte }
		entries, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (entry, error) {
			var e entry
			err := row.Scan(&e.key, &e.id)
			return e, err
		})
		if err != nil {
			return dbError(err)
		}
		for _, e := range entries {
			more, err := fn(string(e.id))
			if err != nil || !more {
				return err
			}
		}
		if len(entries) < chunk {
			return nil
		}
		after = entries[len(entries)-1].key
	}
}
