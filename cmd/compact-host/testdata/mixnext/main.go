// Command mixnext is the bundled mix strategy under another version number,
// so the serve test can hot-swap a newer plugin in:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -ldflags "-X main.version=1.1.0" \
//	    -o mix@1.1.0.wasm ./cmd/compact-host/testdata/mixnext
package main

import (
	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
)

// version is the manifest version; it must match the file name's.
var version = "1.1.0"

type next struct{ *mixstrategy.Strategy }

// Manifest reports the mix manifest under this build's version.
func (n next) Manifest() sdk.Manifest {
	m := n.Strategy.Manifest()
	m.Version = version
	return m
}

func init() { sdk.Register(next{mixstrategy.New()}) }

func main() {}
