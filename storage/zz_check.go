package storage

import (
	_ "github.com/milvus-io/milvus/pkg/v2/proto/datapb"
	_ "github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	_ "github.com/apache/arrow-go/v18/parquet/pqarrow"
	_ "github.com/greatroar/blobloom"
	_ "github.com/minio/minio-go/v7"
	_ "github.com/tetratelabs/wazero"
	_ "github.com/bits-and-blooms/bloom/v3"
	_ "github.com/spf13/cobra"
	_ "github.com/hashicorp/go-hclog"
)
