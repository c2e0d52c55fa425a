package main

import (
	"fmt"
	"time"

	"github.com/compacthost/compacthost/mempool"
)

// policyUsage is the --policy help of run and serve.
const policyUsage = "share of --memory the pool gets: static:0.5; window:08:00-20:00=0.25,default=1[,tz=Europe/Berlin]; " +
	"load:0.5[,hysteresis=10%,interval=5s,min=1GiB,max=8GiB], half of what the machine or its cgroup has available; " +
	"or a time policy capped by a load one, 'window:08:00-20:00=0.25,default=1;load:0.5'"

// newPolicyPool returns a pool sized by policy and budget for now, and the
// controller that keeps it so. A load policy reads the machine's memory here,
// so a source that cannot be read fails the start instead of every tick.
func newPolicyPool(policy mempool.Policy, budget int64) (*mempool.Pool, *mempool.Controller, error) {
	pool, err := mempool.NewPool(mempool.TotalAt(policy, budget, time.Now()))
	if err != nil {
		return nil, nil, withCode(exitUsage, fmt.Errorf("memory pool of --memory %s with --policy %s: %w", formatHumanBytes(budget), policy, err))
	}
	ctrl := &mempool.Controller{Pool: pool, Policy: policy, Budget: budget}
	if _, err := ctrl.Apply(time.Now()); err != nil {
		return nil, nil, fmt.Errorf("--policy %s: %w", policy, err)
	}
	return pool, ctrl, nil
}
