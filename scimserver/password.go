package scimserver

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
)

// pbkdf2Iterations trades verification cost against provisioning throughput: identity providers
// send a password with every create (Okta sends a placeholder), and the hash is computed on the
// request path.
const pbkdf2Iterations = 100_000

// hashPassword returns a salted PBKDF2-SHA256 hash in the form
// "pbkdf2-sha256$iterations$salt$hash"; the clear text is never stored.
func hashPassword(pw string) []byte {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key, err := pbkdf2.Key(sha256.New, pw, salt, pbkdf2Iterations, 32)
	if err != nil {
		panic(err) // only for parameters out of FIPS range, which these constants are not
	}
	enc := base64.RawStdEncoding
	return []byte("pbkdf2-sha256$" + strconv.Itoa(pbkdf2Iterations) + "$" + enc.EncodeToString(salt) + "$" + enc.EncodeToString(key))
}
