// Package storage is the contract between the SCIM domain and the engines that keep its data:
// the interfaces the domain needs (a store that runs transactions, and what a transaction can do),
// the records it stores, the collections and indexes it declares, and the errors an engine
// returns. It holds no engine: storage/bolt keeps everything in one bbolt file, and any other
// engine passes the same conformance suite (storage/storagetest).
//
// Engines know nothing about SCIM or HTTP. A record carries its document as opaque JSON and the
// index keys the domain derived from it; the engine keeps records, indexes, memberships, audit
// facts, the audit trail, tenants and tokens consistent inside one transaction, and makes a
// successful write durable before it returns.
package storage

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/scimserver/scimserver/strictjson"
)

// Store is an open storage engine.
type Store interface {
	// Read runs fn in a read-only transaction over one tenant's data; the error is NotFound
	// when the tenant does not exist.
	Read(ctx context.Context, tenant string, fn func(Tx) error) error
	// Write runs fn in a read-write transaction over one tenant's data. The changes are durable
	// when Write returns nil; nothing of them is kept when fn or the commit fails. fn may run
	// more than once (an engine may rerun it after a conflict with a concurrent writer), so it
	// must derive everything it does from the transaction. Writes are serializable: no other
	// write commits between what fn reads and its own commit, so a rule checked on data fn read
	// still holds when its changes land.
	Write(ctx context.Context, tenant string, fn func(Tx) error) error
	// ReadAdmin and WriteAdmin run fn over tenants and tokens; through AdminTx.In, fn reaches
	// any tenant's data in the same transaction (an operator's change and its audit event
	// commit together). WriteAdmin's fn may run more than once, like Write's.
	ReadAdmin(ctx context.Context, fn func(AdminTx) error) error
	WriteAdmin(ctx context.Context, fn func(AdminTx) error) error
	// Ping reports whether the store can take a write now (readiness).
	Ping(ctx context.Context) error
	// Watch returns a channel that is closed once an event appended to tenant's trail after
	// the call has been committed, by this process or any other sharing the data (followers of
	// the change feed wait on it instead of polling). It is also closed when the store closes,
	// and may be closed spuriously: a waiter reads the trail again and, finding nothing new,
	// watches again. Call Watch before reading, so that no commit falls between the two.
	Watch(tenant string) <-chan struct{}
	Close() error
}

// AdminTx is a transaction over tenants and tokens.
type AdminTx interface {
	Now() time.Time
	Tenants() ([]Tenant, error)
	// Tenant returns one tenant; NotFound when it does not exist.
	Tenant(id string) (Tenant, error)
	// PutTenant creates a tenant (with empty data) or updates one.
	PutTenant(t Tenant) error
	// TokenByHash returns the token whose secret hashes to hash; NotFound when none does.
	TokenByHash(hash []byte) (Token, error)
	// Token returns a token by id; NotFound when none has it.
	Token(id string) (Token, error)
	// Tokens lists the tokens of tenant ("" for every tenant) in creation order.
	Tokens(tenant string) ([]Token, error)
	// PutToken creates or updates a token, found by its ID; its Hash never changes.
	PutToken(t Token) error
	// In is the transaction's view of one tenant's data; NotFound when the tenant does not
	// exist.
	In(tenant string) (Tx, error)
}

// Tx is a transaction over one tenant's data. Reads see one consistent snapshot. In a write
// transaction every method keeps records, indexes, counts, memberships and the trail in step,
// and a method that returns an error has changed nothing (fn may go on after a Conflict).
type Tx interface {
	// Tenant is the tenant the transaction is over.
	Tenant() string
	// Now is the transaction's clock reading, the same for everything it writes.
	Now() time.Time

	// Get returns a record; NotFound when the collection has no record with id.
	Get(c *Collection, id string) (Record, error)
	// Exists reports whether the collection has a record with id.
	Exists(c *Collection, id string) bool
	// Insert stores a new record under r.ID (Conflict when a record has that id, or when a
	// unique index already holds one of r's keys for another record). It sets Created and
	// Modified to Now and Version to 1, and returns the record as stored.
	Insert(c *Collection, r Record) (Record, error)
	// Update replaces a record's document, keys and secret (Conflict as for Insert; NotFound
	// when it does not exist), keeps Created, sets Modified to Now and gives it a new Version,
	// and returns the record as stored. Several updates and touches of one record in one
	// transaction give it one new version.
	Update(c *Collection, r Record) (Record, error)
	// Touch gives a record a new version and Modified time without changing its document (its
	// representation changed through related data, such as its groups). Touching a record
	// already changed in this transaction does nothing; touching a missing one is NotFound.
	// Every membership change touches its member, so a touch should cost far less than an
	// Update: the engine need not rewrite the record (bolt keeps a counter beside it).
	Touch(c *Collection, id string) error
	// Delete removes a record and its index entries; NotFound when it does not exist. Its
	// memberships are the caller's to remove first.
	Delete(c *Collection, id string) error
	// Count is the number of records in the collection.
	Count(c *Collection) int
	// Deletes counts the records ever deleted from the collection: ids grow with time, so a
	// record's position in id order changes only when an older record is deleted, and a
	// remembered position stays valid for as long as this number does not change.
	Deletes(c *Collection) uint64
	// Lookup returns, in id order, the ids of the records whose keys under the named index
	// include key (folded first when the index folds case).
	Lookup(c *Collection, index, key string) ([]string, error)
	// Scan calls fn for the records in id order from the position from, until fn returns
	// false or an error (which Scan returns). Reaching a deep Offset costs about what reaching
	// the first record does.
	Scan(c *Collection, from Position, fn func(Record) (bool, error)) error
	// ScanIndex calls fn with the ids of a unique index in the order of their keys (reversed
	// when descending), after stepping over skip of them, until fn returns false or an error.
	ScanIndex(c *Collection, index string, descending bool, skip int, fn func(id string) (bool, error)) error

	// AddMember makes m a member of group, or updates its Type and Display when it is one.
	AddMember(group string, m Member) error
	// RemoveMember ends a membership and reports whether there was one.
	RemoveMember(group, member string) (bool, error)
	// Member returns one membership, and whether it exists.
	Member(group, member string) (Member, bool, error)
	// Members calls fn for every member of group, in an order of the engine's that only a
	// change of the group's members changes (bolt: as they joined, those of a file of an older
	// format first, by id; PostgreSQL: by member id); a member whose display changes keeps its
	// place.
	Members(group string, fn func(Member) error) error
	// MemberOf returns, in id order, the groups that member is a direct member of: the cost
	// is that of its memberships, whatever the number of groups.
	MemberOf(member string) ([]string, error)

	// Facts returns what the platform reported about a user (the zero Facts when nothing).
	Facts(user string) (Facts, error)
	// PutFacts replaces a user's facts.
	PutFacts(user string, f Facts) error
	// AddParticipant makes user a current participant of campaign. added reports whether the
	// user was not one already; first whether the user was never a participant before.
	AddParticipant(campaign, user string) (added, first bool, err error)
	// RemoveParticipant ends a participation and reports whether there was one.
	RemoveParticipant(campaign, user string) (bool, error)
	// Participations lists every campaign user was ever assigned to, in campaign order, and
	// whether the user still takes part (Campaigns keeps the current ones).
	Participations(user string) ([]Participation, error)

	// Append adds ev to the tenant's audit trail: the engine sets its Seq (greater than every
	// earlier event's, in commit order), Time (Now) and Tenant.
	Append(ev Event) error
	// Trail returns the events that match q, newest first, and the cursor of the next page (0
	// when there is none).
	Trail(q TrailQuery) ([]Event, uint64, error)
	// Events calls fn for every event with a Seq greater than after, oldest first, until fn
	// returns false or an error.
	Events(after uint64, fn func(Event) (bool, error)) error
	// TrailLength is the number of events in the tenant's trail.
	TrailLength() (int, error)

	// Erased records, in the transaction that overwrites personal data, that the old values
	// may survive in storage the engine has freed but not yet cleared; the engine clears it
	// after the commit (see Eraser).
	Erased(user string) error
}

// Collection declares a kind of record and its indexes. The domain declares each collection
// once; the engine derives from the declaration where it keeps the records and index entries,
// how it backfills an index added later, and what its consistency check compares.
type Collection struct {
	Name    string // "users": unique among collections, stable (it names storage)
	Indexes []Index
}

// Index declares an index of a collection.
type Index struct {
	Name string // "userName": unique within the collection, stable (it names storage)
	// Attr is the attribute path whose equality filters the index answers, for the query
	// planner ("emails.value"); the engine does not read it.
	Attr string
	// Unique: at most one record per key; a second is a Conflict.
	Unique bool
	// Fold: keys are compared case-insensitively (the engine folds them with Fold).
	Fold bool
	// Keys derives the index keys from a decoded document: the one definition the domain uses
	// when it writes a record and the engine uses when it backfills or checks the index. Empty
	// strings are not indexed.
	Keys func(doc map[string]any) []string
}

// Index returns the position of the named index in c.Indexes, or -1.
func (c *Collection) Index(name string) int {
	for i, ix := range c.Indexes {
		if ix.Name == name {
			return i
		}
	}
	return -1
}

// KeysOf derives every index's keys from a decoded document, in the order of c.Indexes: what
// Record.Keys holds.
func (c *Collection) KeysOf(doc map[string]any) [][]string {
	keys := make([][]string, len(c.Indexes))
	for i, ix := range c.Indexes {
		keys[i] = ix.Keys(doc)
	}
	return keys
}

// Record is a stored document with what the engine keeps beside it.
type Record struct {
	ID  string
	Doc json.RawMessage // the document (JSON) as the domain wants it back
	// Keys holds each index's keys, in the order of the collection's Indexes; set by the
	// writer (Collection.KeysOf), not filled in by reads.
	Keys [][]string
	// Secret is a credential hash kept with the record and never part of its document (a
	// user's password hash).
	Secret   []byte
	Created  time.Time
	Modified time.Time
	Version  uint64
}

// Position is where a scan in id order starts: at the first record whose id is at or after
// From ("" for the first record), then Offset records further.
type Position struct {
	From   string
	Offset int
	// Want is how many records the scan is expected to read, where the caller knows (a page):
	// an engine that reads in chunks may read that many at once. 0: not known.
	Want int
}

// Member is one membership of a group.
type Member struct {
	Value   string // the member's id
	Type    string // "User" or "Group", as the domain says
	Display string
}

// Participation is a user's assignment to a campaign, current or ended.
type Participation struct {
	Campaign string
	Current  bool
}

// Campaigns lists, in order, the campaigns user currently takes part in.
func Campaigns(tx Tx, user string) ([]string, error) {
	ps, err := tx.Participations(user)
	var out []string
	for _, p := range ps {
		if p.Current {
			out = append(out, p.Campaign)
		}
	}
	return out, err
}

// Facts are what the platform reported about a user.
type Facts struct {
	FirstInteractionAt *time.Time `json:"fi,omitempty"`
	LastInteractionAt  *time.Time `json:"li,omitempty"`
	Interactions       int        `json:"n,omitempty"`
	// Campaigns counts the distinct campaigns the user was ever assigned to.
	Campaigns    int        `json:"c,omitempty"`
	AnonymizedAt *time.Time `json:"a,omitempty"`
	// ScrubbedAt is when the storage that could still hold the values an anonymization erased
	// was cleared; nil while that is pending.
	ScrubbedAt *time.Time `json:"s,omitempty"`
}

// Event is one entry of a tenant's append-only audit trail. It names what changed, never the
// values: the trail must hold no personal data that an erasure would have to find.
type Event struct {
	Seq          uint64    `json:"seq"`
	Time         time.Time `json:"time"`
	Tenant       string    `json:"tenant"`
	ActorID      string    `json:"actorId,omitempty"`
	ActorName    string    `json:"actorName,omitempty"`
	Operation    string    `json:"operation"`
	ResourceType string    `json:"resourceType,omitempty"`
	ResourceID   string    `json:"resourceId,omitempty"`
	Attributes   []string  `json:"attributes,omitempty"`
	// Related is another resource the operation involved, e.g. the campaign of an assignment
	// or the member of a membership, and RelatedType its type ("User", "Group") when the
	// operation names one.
	Related     string `json:"related,omitempty"`
	RelatedType string `json:"relatedType,omitempty"`
	// Version is the resource's version after the operation (0 when it no longer exists): the
	// change feed hands it to consumers as meta.version.
	Version uint64 `json:"version,omitempty"`
	Outcome string `json:"outcome"`
}

// TrailQuery selects audit events. Before is a cursor: only events with a smaller Seq.
type TrailQuery struct {
	ResourceID   string
	Since, Until time.Time // zero means unbounded
	Before       uint64
	Limit        int // 0 means 100
}

// Tenant is one organisation's instance of the platform; every record belongs to exactly one.
type Tenant struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`
	Disabled bool      `json:"disabled,omitempty"`
}

// Token is a bearer credential of one tenant. Only a hash of its secret is stored.
type Token struct {
	ID      string     `json:"id"`
	Tenant  string     `json:"tenant"`
	Name    string     `json:"name"`
	Scopes  []string   `json:"scopes"`
	Created time.Time  `json:"created"`
	Expires *time.Time `json:"expires,omitempty"`
	Revoked *time.Time `json:"revoked,omitempty"`
	Hash    string     `json:"hash"` // hex
}

// Eraser is implemented by engines in which overwritten or deleted values survive in storage
// they have freed but not cleared (bbolt's free pages). Tx.Erased records an erasure as pending
// in its own transaction; the engine clears what it may have left in the background, as soon as
// it can, and records each erasure it covered (for bolt, through Options.ErasureCleared).
type Eraser interface {
	// AwaitErasure asks for the clearing of every erasure committed so far and waits until
	// one has run: nil when it succeeded, its error when it failed (the engine tries again by
	// itself), ctx.Err() when ctx ended first (the clearing still runs).
	AwaitErasure(ctx context.Context) error
	// PendingErasures reports how many erasures wait to be cleared, and when the oldest of them
	// committed (zero when none does).
	PendingErasures() (n int, oldest time.Time, err error)
}

// Snapshotter is implemented by engines that can copy all their data as one consistent snapshot
// (an online backup).
type Snapshotter interface {
	// Snapshot stages a consistent snapshot and returns it ready to read. One snapshot exists
	// at a time, until it is closed: a second caller meanwhile gets Conflict.
	Snapshot(ctx context.Context) (*Snapshot, error)
}

// Snapshot is a staged copy of all of an engine's data.
type Snapshot struct {
	io.ReadCloser
	Size   int64
	SHA256 []byte
}

// Instrumented is implemented by engines that report figures for metrics.
type Instrumented interface {
	// ObserveCommits has fn called after each commit with its figures.
	ObserveCommits(fn func(Commit))
	// Sizes reports the storage's size in bytes, and how much of it holds live data.
	Sizes() (total, used int64, err error)
}

// Checkpointed is implemented by engines that acknowledge commits by appending them to a log of
// their own, which a checkpoint later makes redundant (bbolt's commit log).
type Checkpointed interface {
	// LogFigures reports the log as it stands.
	LogFigures() LogFigures
}

// LogFigures describe an engine's commit log since the store was opened.
type LogFigures struct {
	Bytes          int64         // of commits not yet checkpointed: what a crash now would replay
	Checkpoints    uint64        // completed
	CheckpointTime time.Duration // spent in them, the data file's sync included
}

// Commit is what an engine reports of one committed write transaction.
type Commit struct {
	Writes int           // the writes it carried (group commit shares one transaction)
	Took   time.Duration // from its start to its end, fsync included
	// PageWrites is how many writes of pages to the data file it made besides its meta page,
	// each at a place of its own (a node spanning adjacent pages is one write): the size of its
	// record in bbolt's commit log, and what the next checkpoint syncs. 0 where the engine does
	// not count them (PostgreSQL).
	PageWrites int
}

// TokenFinder is implemented by engines that read a token with its tenant in one statement, with
// no transaction around it: where every request checks its token in the store (one shared by
// several servers), a transaction's BEGIN and COMMIT would double that check's round trips.
type TokenFinder interface {
	// FindToken returns the token whose secret hashes to hash and its tenant as they were at one
	// instant: NotFound when no token has the hash, a nil tenant when the tenant does not exist.
	FindToken(ctx context.Context, hash []byte) (Token, *Tenant, error)
}

// MemberPreparer is implemented by engines whose statements each cost a round trip. Before the
// domain adds, removes or touches many members of one group in a write, it names them; the engine then
// reads at once what each change will ask for (the memberships, whether each member is a record
// of one of colls, the members' facts), so that the changes send nothing they must wait for.
// A hint: every answer is the same with or without it. (The changes then go with the write's
// next statement; should the database refuse one, which their statements leave no reason for,
// the whole commit fails as the database's error, not the write alone.)
type MemberPreparer interface {
	PrepareMembers(group string, members []string, colls []*Collection) error
}

// Importer is implemented by engines that can take in another store's data as it was, with its
// versions, times and trail order (scimserver migrate copies a deployment between engines).
type Importer interface {
	// Import runs fn in a write transaction over tenant's data (the tenant must exist), like
	// Store.Write, with the import methods besides Tx's.
	Import(ctx context.Context, tenant string, fn func(ImportTx) error) error
}

// ImportTx is a write transaction that stores data as another store kept it.
type ImportTx interface {
	Tx
	// PutRecord stores r under r.ID with its Created, Modified and Version as given, creating
	// it or replacing what the collection holds under that id, with its index entries and
	// counts (Conflict when a unique key belongs to another record).
	PutRecord(c *Collection, r Record) error
	// PutEvent appends ev to the trail keeping its Seq and Time; Seq must be greater than that
	// of every event already in the trail (Invalid otherwise), and later Appends continue
	// after it.
	PutEvent(ev Event) error
	// LastSeq is the greatest Seq in the trail (0 when it is empty): where an interrupted
	// import resumes.
	LastSeq() (uint64, error)
}

// DecodeDoc decodes a stored document as Index.Keys reads it: numbers as json.Number, so that
// keys derived from them are written as they were sent. An empty document is an empty map.
func DecodeDoc(raw []byte) (map[string]any, error) {
	if len(raw) == 0 {
		return map[string]any{}, nil
	}
	return strictjson.DecodeObject(raw)
}
