package objstore

import "errors"

// IsStoreError reports whether err (or an error it wraps) came from a
// Store method: the backend failed, refused or could not be reached, or
// the object is missing ([ErrNotExist]). A caller tells storage trouble
// from bad data this way: an object that arrived but does not decode is
// not a store error.
func IsStoreError(err error) bool {
	var oe *opError
	return errors.As(err, &oe)
}
