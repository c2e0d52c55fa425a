package mempool_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/pkg/v2/proto/datapb"

	"github.com/compacthost/compacthost/mempool"
)

func ExamplePool_PreFetch() {
	pool, err := mempool.NewPool(1 << 30) // 1 GiB for compaction
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	lease, err := pool.PreFetch(ctx, "plan-42", 256<<20)
	if err != nil {
		fmt.Println("no memory:", err)
		return
	}
	fmt.Println("granted", lease.Size()>>20, "MiB; available", pool.Stats().Available>>20, "MiB")

	// A request that can never fit fails at once.
	_, err = pool.PreFetch(ctx, "plan-43", 2<<30)
	fmt.Println(errors.Is(err, mempool.ErrTooLarge))

	if err := pool.Return(lease); err != nil {
		panic(err)
	}
	fmt.Println("returned twice:", errors.Is(pool.Return(lease), mempool.ErrNotHeld))
	// Output:
	// granted 256 MiB; available 768 MiB
	// true
	// returned twice: true
}

func ExampleParsePolicy() {
	policy, err := mempool.ParsePolicy("window:08:00-22:00=0.2,default=0.8,tz=Asia/Tokyo")
	if err != nil {
		panic(err)
	}
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	noon := time.Date(2026, 7, 1, 12, 0, 0, 0, tokyo)
	fmt.Println(mempool.TotalAt(policy, 10<<30, noon)>>20, "MiB until", policy.NextChange(noon).Format("15:04"))

	_, err = mempool.ParsePolicy("window:08:00-22:00=0.2")
	fmt.Println(err)
	// Output:
	// 2048 MiB until 22:00
	// mempool: policy "window:08:00-22:00=0.2": missing default=FRACTION for the time outside the windows
}

func ExampleEstimate() {
	schema := &schemapb.CollectionSchema{Fields: []*schemapb.FieldSchema{
		{FieldID: 100, Name: "pk", IsPrimaryKey: true, DataType: schemapb.DataType_Int64},
		{FieldID: 101, Name: "vec", DataType: schemapb.DataType_FloatVector,
			TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "768"}}},
	}}
	segment := func(id, rows, deletes int64) *datapb.CompactionSegmentBinlogs {
		binlog := func(field, bytesPerRow int64) *datapb.FieldBinlog {
			fb := &datapb.FieldBinlog{FieldID: field}
			for left := rows; left > 0; left -= 20_000 { // one chunk per 20k rows
				n := min(left, 20_000)
				fb.Binlogs = append(fb.Binlogs, &datapb.Binlog{EntriesNum: n, LogSize: n * bytesPerRow})
			}
			return fb
		}
		return &datapb.CompactionSegmentBinlogs{SegmentID: id,
			FieldBinlogs: []*datapb.FieldBinlog{binlog(0, 2), binlog(1, 3), binlog(100, 4), binlog(101, 3000)},
			Deltalogs:    []*datapb.FieldBinlog{{Binlogs: []*datapb.Binlog{{EntriesNum: deletes}}}}}
	}
	plan := &datapb.CompactionPlan{PlanID: 1, Schema: schema,
		SegmentBinlogs: []*datapb.CompactionSegmentBinlogs{segment(1, 200_000, 10_000), segment(2, 100_000, 0)}}

	// GuestMinBytes: the strategy module's declared minimum, from admission.
	est, err := mempool.Estimate(plan, mempool.EstimateOptions{GuestMinBytes: 2 << 20})
	if err != nil {
		panic(err)
	}
	fmt.Printf("rows %d, deletes %d, %d bytes/row (strategy sees %d)\n", est.Rows, est.Deletes, est.RowBytes, est.StrategyRowBytes)
	fmt.Printf("strategy %d MiB + host %d MiB = lease %d MiB\n", est.Strategy>>20, est.Host>>20, est.Total>>20)
	fmt.Printf("host: reads %d MiB, held %d MiB, objects %d MiB, output chunk %d MiB, encoding %d MiB, headroom %d MiB\n",
		est.HostReadBatches>>20, est.HostHeldBatches>>20, est.HostObjectBuffers>>20, est.HostOutputChunk>>20,
		est.HostOutputEncode>>20, est.HostHeadroom>>20)
	// Output:
	// rows 300000, deletes 10000, 3096 bytes/row (strategy sees 16)
	// strategy 6 MiB + host 990 MiB = lease 996 MiB
	// host: reads 48 MiB, held 60 MiB, objects 229 MiB, output chunk 88 MiB, encoding 192 MiB, headroom 371 MiB
}

func ExampleController() {
	pool, _ := mempool.NewPool(0)
	policy, _ := mempool.ParsePolicy("window:08:00-22:00=0.25,default=0.75,tz=UTC")
	c := &mempool.Controller{Pool: pool, Policy: policy, Budget: 8 << 30}
	// In production: go c.Run(ctx), which applies the policy at every window
	// edge. Apply evaluates it at one instant.
	for _, hour := range []int{7, 8, 21, 22} {
		total, err := c.Apply(time.Date(2026, 1, 1, hour, 0, 0, 0, time.UTC))
		fmt.Printf("%02d:00 %d MiB %v\n", hour, total>>20, err)
	}
	// Output:
	// 07:00 6144 MiB <nil>
	// 08:00 2048 MiB <nil>
	// 21:00 2048 MiB <nil>
	// 22:00 6144 MiB <nil>
}

// neighbours is a MemorySource for the example: the machine has avail bytes
// left and this process is resident in 256 MiB.
type neighbours struct{ avail int64 }

func (n *neighbours) Memory() (mempool.Memory, error) {
	return mempool.Memory{Available: n.avail, Limit: 16 << 30, Self: 256 << 20, From: "example"}, nil
}

func ExampleLoadPolicy() {
	pool, _ := mempool.NewPool(0)
	policy, _ := mempool.ParsePolicy("load:0.5,min=1GiB,interval=5s")
	machine := &neighbours{avail: 12 << 30}
	// In production Memory is nil (SystemMemory: /proc/meminfo and the cgroup).
	c := &mempool.Controller{Pool: pool, Policy: policy, Budget: 8 << 30, Memory: machine}
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	step := func(sec int, avail int64) {
		machine.avail = avail
		total, err := c.Apply(t0.Add(time.Duration(sec) * time.Second))
		fmt.Printf("t=%2ds available %5d MiB: pool %d MiB %v\n", sec, avail>>20, total>>20, err)
	}
	step(0, 12<<30)  // half of 12 GiB
	step(5, 11<<30)  // within 10% of the cap: no resize
	step(10, 6<<30)  // a neighbour took 6 GiB: shrink
	step(15, 1<<30)  // the floor
	step(20, 30<<30) // --memory (Budget) stays the ceiling
	// Output:
	// t= 0s available 12288 MiB: pool 6144 MiB <nil>
	// t= 5s available 11264 MiB: pool 6144 MiB <nil>
	// t=10s available  6144 MiB: pool 3072 MiB <nil>
	// t=15s available  1024 MiB: pool 1024 MiB <nil>
	// t=20s available 30720 MiB: pool 8192 MiB <nil>
}
