package storage

import (
	"encoding/json"
	"slices"
	"time"
)

// User is a stored user. Doc holds the SCIM attributes (JSON) as the HTTP layer wants them back;
// Keys holds the values derived from them that are indexed.
type User struct {
	ID       string
	Doc      json.RawMessage
	Keys     UserKeys
	Created  time.Time
	Modified time.Time
	Version  uint64
	// Password is a salted hash, never the clear text.
	Password []byte
}

// UserKeys are a user's indexed values.
type UserKeys struct {
	UserName   string   `json:"u"`           // unique per tenant, compared case-insensitively
	ExternalID string   `json:"x,omitempty"` // compared exactly
	Emails     []string `json:"e,omitempty"` // compared case-insensitively
}

// User index names for LookupUsers.
const (
	ByUserName   = "userName"
	ByExternalID = "externalId"
	ByEmail      = "email"
)

func (k UserKeys) check() error {
	if k.UserName == "" {
		return Errorf(Invalid, "userName is required")
	}
	if err := checkKey("userName", k.UserName); err != nil {
		return err
	}
	if err := checkKey("externalId", k.ExternalID); err != nil {
		return err
	}
	for _, e := range k.Emails {
		if err := checkKey("an email address", e); err != nil {
			return err
		}
	}
	return nil
}

// User returns the user with id.
func (t *Tx) User(id string) (User, error) {
	raw := t.b.Bucket(bktUsers).Get([]byte(id))
	if raw == nil {
		return User{}, errUserNotFound
	}
	return decodeUser(id, raw)
}

// UserExists reports whether id is a user of the tenant.
func (t *Tx) UserExists(id string) bool { return t.b.Bucket(bktUsers).Get([]byte(id)) != nil }

// CountUsers is the number of users of the tenant.
func (t *Tx) CountUsers() int { return int(t.count("users")) }

// UserDeletes counts the users ever deleted. Ids grow with time, so a user's position in id
// order changes only when an older user is deleted: a remembered position is valid for as long
// as this number stays the same.
func (t *Tx) UserDeletes() uint64 { return t.count("userDeletes") }

// LookupUsers returns the ids of the users whose indexed value under index equals value.
func (t *Tx) LookupUsers(index, value string) ([]string, error) {
	switch index {
	case ByUserName:
		if id := t.b.Bucket(bktUserName).Get([]byte(Fold(value))); id != nil {
			return []string{string(id)}, nil
		}
		return nil, nil
	case ByExternalID:
		return indexLookup(t.b.Bucket(bktUserExt), value)
	case ByEmail:
		return indexLookup(t.b.Bucket(bktEmail), Fold(value))
	}
	return nil, Errorf(Invalid, "no user index %q", index)
}

// ScanUsers calls fn for every user in id (creation) order, starting after the id after ("" for
// the first) and skip users further, until fn returns false.
func (t *Tx) ScanUsers(after string, skip int, fn func(User) (bool, error)) error {
	c := t.b.Bucket(bktUsers).Cursor()
	k, v := seek(c, after, skip)
	for ; k != nil; k, v = c.Next() {
		u, err := decodeUser(string(k), v)
		if err != nil {
			return err
		}
		more, err := fn(u)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// ScanUserNames calls fn with user ids in the order of their userNames compared
// case-insensitively (reversed when descending), after stepping over skip users, until fn
// returns false: a listing sorted by userName, read from the index.
func (t *Tx) ScanUserNames(descending bool, skip int, fn func(id string) bool) {
	scanNames(t.b.Bucket(bktUserName), descending, skip, fn)
}

// UserPosition returns where ScanUsers must start (after, skip) to reach the user at 0-based
// position pos of the id order, without stepping over the users before it.
func (t *Tx) UserPosition(pos int) (after string, skip int) { return userOrder.find(t.b, pos) }

// UserBefore returns the id just before id in id order ("" if none): ScanUsers after it
// starts at id.
func (t *Tx) UserBefore(id string) string { return before(t.b.Bucket(bktUsers), id) }

// CreateUser stores a new user; u.ID must be fresh. Conflict when the userName is taken.
func (t *Tx) CreateUser(u User) (User, error) {
	if err := u.Keys.check(); err != nil {
		return User{}, err
	}
	if t.UserExists(u.ID) {
		return User{}, Errorf(Conflict, "a user with that id already exists")
	}
	if err := t.indexUser(u.ID, UserKeys{}, u.Keys); err != nil {
		return User{}, err
	}
	u.Created, u.Modified, u.Version = t.now, t.now, 1
	if err := t.putUser(u); err != nil {
		return User{}, err
	}
	if err := t.addCount("users", 1); err != nil {
		return User{}, err
	}
	return u, userOrder.add(t.b, []byte(u.ID))
}

// UpdateUser replaces a user's document, keys and password, bumping its version.
func (t *Tx) UpdateUser(u User) (User, error) {
	old, err := t.User(u.ID)
	if err != nil {
		return User{}, err
	}
	if err := u.Keys.check(); err != nil {
		return User{}, err
	}
	if err := t.indexUser(u.ID, old.Keys, u.Keys); err != nil {
		return User{}, err
	}
	u.Created, u.Modified, u.Version = old.Created, t.now, old.Version+1
	return u, t.putUser(u)
}

func (t *Tx) putUser(u User) error {
	raw, err := marshalUser(u)
	if err != nil {
		return err
	}
	return t.appended(bktUsers).Put([]byte(u.ID), raw)
}

// DeleteUser removes a user, its index entries and its group memberships (each group's version
// changes). The groups are found through the reverse index: O(the user's memberships).
// An audited user cannot be deleted: Conflict.
func (t *Tx) DeleteUser(id string) error {
	old, err := t.User(id)
	if err != nil {
		return err
	}
	if f, err := t.Facts(id); err != nil {
		return err
	} else if f.Audited() {
		return Errorf(Conflict, "the user is part of the audit record and cannot be deleted")
	}
	if err := t.indexUser(id, old.Keys, UserKeys{}); err != nil {
		return err
	}
	if err := t.RemoveFromAllGroups(id); err != nil {
		return err
	}
	if err := t.b.Bucket(bktUsers).Delete([]byte(id)); err != nil {
		return err
	}
	if err := t.addCount("userDeletes", 1); err != nil {
		return err
	}
	if err := t.addCount("users", -1); err != nil {
		return err
	}
	return userOrder.remove(t.b, []byte(id))
}

// indexUser moves id's index entries from old to new keys, failing with Conflict when new's
// userName belongs to another user.
func (t *Tx) indexUser(id string, old, new UserKeys) error {
	names := t.b.Bucket(bktUserName)
	if Fold(old.UserName) != Fold(new.UserName) {
		if new.UserName != "" {
			if owner := names.Get([]byte(Fold(new.UserName))); owner != nil && string(owner) != id {
				return Errorf(Conflict, "userName is already taken")
			}
		}
		if old.UserName != "" {
			if err := names.Delete([]byte(Fold(old.UserName))); err != nil {
				return err
			}
		}
		if new.UserName != "" {
			if err := names.Put([]byte(Fold(new.UserName)), []byte(id)); err != nil {
				return err
			}
		}
	}
	ext := t.b.Bucket(bktUserExt)
	if old.ExternalID != new.ExternalID {
		if old.ExternalID != "" {
			if err := indexDel(ext, old.ExternalID, id); err != nil {
				return err
			}
		}
		if new.ExternalID != "" {
			if err := indexAdd(ext, new.ExternalID, id); err != nil {
				return err
			}
		}
	}
	emails := t.b.Bucket(bktEmail)
	oldE, newE := foldAll(old.Emails), foldAll(new.Emails)
	for _, e := range oldE {
		if !slices.Contains(newE, e) {
			if err := indexDel(emails, e, id); err != nil {
				return err
			}
		}
	}
	for _, e := range newE {
		if !slices.Contains(oldE, e) {
			if err := indexAdd(emails, e, id); err != nil {
				return err
			}
		}
	}
	return nil
}

func foldAll(vs []string) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		if f := Fold(v); f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}
