package main

import (
	"context"
	"fmt"
	"time"

	"github.com/scimserver/scimserver/scimserver"
	"github.com/scimserver/scimserver/storage"
	"github.com/scimserver/scimserver/storage/bolt"
	"github.com/scimserver/scimserver/storage/postgres"
)

// dataStore is an open storage engine as the commands use it.
type dataStore interface {
	storage.Store
	storage.Instrumented
}

// openStore opens the storage engine --data names: a PostgreSQL database for a postgres:// or
// postgresql:// URL, otherwise a bbolt data file. readOnly opens it without changing it (on
// PostgreSQL, servers may be writing meanwhile).
func openStore(c *config, readOnly bool) (dataStore, error) {
	if postgres.IsURL(c.data) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return postgres.Open(ctx, c.data, postgres.Options{Collections: scimserver.Collections(), ReadOnly: readOnly})
	}
	return bolt.Open(c.data, bolt.Options{Collections: scimserver.Collections(), ReadOnly: readOnly, Timeout: 2 * time.Second,
		ErasureCleared: scimserver.ErasureCleared, CommitLogBytes: c.commitLogBytes})
}

// dataName is how messages and logs name --data: a URL without its password.
func (c *config) dataName() string {
	if postgres.IsURL(c.data) {
		return postgres.Redact(c.data)
	}
	return c.data
}

// onPostgres reports whether --data is a PostgreSQL database.
func (c *config) onPostgres() bool { return postgres.IsURL(c.data) }

// fileOnly refuses a command that works on the bbolt data file when --data is a PostgreSQL URL.
func (c *config) fileOnly(what, instead string) error {
	if !c.onPostgres() {
		return nil
	}
	return fmt.Errorf("%s works on a bbolt data file; --data is a PostgreSQL database: %s", what, instead)
}

// checkStore verifies the store's indexes and counts against its data.
func checkStore(s dataStore) ([]string, error) {
	switch s := s.(type) {
	case *bolt.Store:
		return s.Check()
	case *postgres.Store:
		return s.Check(context.Background())
	}
	return nil, fmt.Errorf("this engine has no check")
}
