// Command l0 is the bundled L0 delete-compaction strategy as a wasm
// reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o l0.wasm ./plugins/l0
//
// The strategy itself is package l0strategy; this package only registers
// it with the guest SDK.
package main

import (
	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/plugins/l0/l0strategy"
)

func init() { sdk.Register(l0strategy.New()) }

func main() {}
