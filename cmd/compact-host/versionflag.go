package main

import (
	"fmt"
	"strings"

	"github.com/compacthost/compacthost/host"
)

// outputVersion is the --storage-version flag: the storage version of mix
// outputs, "plan" (json_params.storage_version) or a forced v1 or v2.
type outputVersion int64

func (v *outputVersion) String() string {
	switch int64(*v) {
	case host.StorageV1:
		return "v1"
	case host.StorageV2:
		return "v2"
	}
	return "plan"
}

func (v *outputVersion) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "plan", "":
		*v = host.StorageFromPlan
	case "v1", "1":
		*v = host.StorageV1
	case "v2", "2":
		*v = host.StorageV2
	default:
		return fmt.Errorf("want plan, v1 or v2")
	}
	return nil
}

func (v *outputVersion) Type() string { return "version" }

const storageVersionUsage = "storage version of mix outputs: plan (json_params.storage_version: 2 is Milvus 2.6's packed column groups, else v1), v1 or v2; inputs are read in their own versions"
