package postgres_test

import (
	"context"
	"testing"

	"github.com/scimserver/scimserver/storage"
	"github.com/scimserver/scimserver/storage/postgres"
	"github.com/scimserver/scimserver/storage/postgres/pgtest"
	"github.com/scimserver/scimserver/storage/storagetest"
)

func open(t *testing.T, url string, collections []*storage.Collection) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, postgres.Options{Collections: collections})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, collections []*storage.Collection) storage.Store {
		return open(t, pgtest.URL(t), collections)
	})
}

func TestReopen(t *testing.T) {
	storagetest.RunReopen(t, func(t *testing.T, name string, collections []*storage.Collection) storage.Store {
		urls := named[t.Name()]
		if urls == nil {
			urls = map[string]string{}
			named[t.Name()] = urls
		}
		if urls[name] == "" {
			urls[name] = pgtest.URL(t)
		}
		return open(t, urls[name], collections)
	})
}

// named holds each reopen test's schemas by name.
var named = map[string]map[string]string{}
