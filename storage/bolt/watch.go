package bolt

// Watch returns a channel closed after the next commit that appends to tenant's trail, or when
// the store closes.
func (s *Store) Watch(tenant string) <-chan struct{} { return s.watchers.Watch(tenant) }
