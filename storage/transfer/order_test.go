package transfer_test

import (
	"context"
	"slices"
	"testing"

	"github.com/scimserver/scimserver/storage"
	"github.com/scimserver/scimserver/storage/postgres"
	"github.com/scimserver/scimserver/storage/postgres/pgtest"
	"github.com/scimserver/scimserver/storage/transfer"
)

// TestCopyToPostgresVerifiesMembersInAnyOrder: bolt lists a group's members as they joined,
// PostgreSQL by id; a copy of a group whose members joined out of id order verifies clean.
func TestCopyToPostgresVerifiesMembersInAnyOrder(t *testing.T) {
	src := source(t)
	ctx := context.Background()
	var ids []string
	if err := src.Read(ctx, "t", func(tx storage.Tx) error {
		return tx.Scan(people, storage.Position{}, func(r storage.Record) (bool, error) { ids = append(ids, r.ID); return true, nil })
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if err := src.Write(ctx, "t", func(tx storage.Tx) error {
		for i := len(ids) - 1; i > 1; i-- { // into ids[0], in descending id order
			if err := tx.AddMember(ids[0], storage.Member{Value: ids[i], Type: "User"}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	dst, err := postgres.Open(ctx, pgtest.URL(t), postgres.Options{Collections: []*storage.Collection{people}})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	opts := transfer.Options{Collections: []*storage.Collection{people}}
	if err := transfer.Copy(ctx, src, dst, opts); err != nil {
		t.Fatal(err)
	}
	if diffs, err := transfer.Verify(ctx, src, dst, opts); err != nil || len(diffs) > 0 {
		t.Fatalf("verify the copy: %v %v", diffs, err)
	}
}
