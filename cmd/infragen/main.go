// Command infragen writes the CloudFormation template of the AWS stack,
// generated from the Go schemas (see package infra):
//
//	go run ./cmd/infragen -o infra/template.json   # what make infra runs
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/littlewarehouse/warehouse/infra"
)

func main() {
	out := flag.String("o", "infra/template.json", "where to write the template (`path`)")
	flag.Parse()
	if err := infra.Write(*out); err != nil {
		fmt.Fprintln(os.Stderr, "infragen:", err)
		os.Exit(1)
	}
}
