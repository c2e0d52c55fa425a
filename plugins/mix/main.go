// Command mix is the bundled mix-compaction strategy as a wasm reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o mix.wasm ./plugins/mix
//
// The strategy itself is package mixstrategy; this package only registers
// it with the guest SDK.
package main

import (
	"github.com/compacthost/compacthost/abi/sdk"
	"github.com/compacthost/compacthost/plugins/mix/mixstrategy"
)

func init() { sdk.Register(mixstrategy.New()) }

func main() {}
