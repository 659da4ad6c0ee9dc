package bolt

import (
	"encoding/json"
	"time"

	"github.com/scimserver/scimserver/storage"
)

func (t *tx) Facts(user string) (storage.Facts, error) {
	var f storage.Facts
	raw := t.b.Bucket(bktFacts).Get([]byte(user))
	if raw == nil {
		return f, nil
	}
	return f, json.Unmarshal(raw, &f)
}

func (t *tx) PutFacts(user string, f storage.Facts) error {
	if err := t.mustWrite(); err != nil {
		return err
	}
	raw, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return t.b.Bucket(bktFacts).Put([]byte(user), raw)
}

func (t *tx) AddParticipant(campaign, user string) (added, first bool, err error) {
	if err := t.mustWrite(); err != nil {
		return false, false, err
	}
	if campaign == "" || len(campaign)+len(user) > storage.MaxKeyLen {
		return false, false, storage.Errorf(storage.Invalid, "a campaign id is 1 to %d bytes", storage.MaxKeyLen/2)
	}
	if t.b.Bucket(bktParticipants).Get(pair(campaign, user)) != nil {
		return false, false, nil
	}
	if err := t.b.Bucket(bktParticipants).Put(pair(campaign, user), []byte(t.now.Format(time.RFC3339Nano))); err != nil {
		return false, false, err
	}
	ever := t.b.Bucket(bktCampaignsOf)
	if ever.Get(pair(user, campaign)) != nil {
		return true, false, nil
	}
	return true, true, ever.Put(pair(user, campaign), nil)
}

func (t *tx) RemoveParticipant(campaign, user string) (bool, error) {
	if err := t.mustWrite(); err != nil {
		return false, err
	}
	k := pair(campaign, user)
	if t.b.Bucket(bktParticipants).Get(k) == nil {
		return false, nil
	}
	return true, t.b.Bucket(bktParticipants).Delete(k)
}

func (t *tx) Participations(user string) ([]storage.Participation, error) {
	var out []storage.Participation
	err := scanPrefix(t.b.Bucket(bktCampaignsOf), prefixOf(user), func(rest []byte) error {
		current := t.b.Bucket(bktParticipants).Get(pair(string(rest), user)) != nil
		out = append(out, storage.Participation{Campaign: string(rest), Current: current})
		return nil
	})
	return out, err
}
