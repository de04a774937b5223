package event

import (
	"reflect"
	"testing"
)

func TestColumnsDocumented(t *testing.T) {
	cols := Columns()
	if len(cols) != reflect.TypeOf(Raw{}).NumField() {
		t.Fatalf("%d columns for %d fields", len(cols), reflect.TypeOf(Raw{}).NumField())
	}
	for _, c := range cols {
		if c.Doc == "" || c.Type == "" {
			t.Errorf("column %s has no doc or type", c.Name)
		}
	}
}

func TestColumnsFollowTheStruct(t *testing.T) {
	want := map[string]string{"event_id": "string", "event_time": "timestamp", "received_at": "timestamp",
		"properties": "map<string,string>", "user_id": "string"}
	got := map[string]string{}
	for _, c := range Columns() {
		got[c.Name] = c.Type
	}
	for name, typ := range want {
		if got[name] != typ {
			t.Errorf("%s: %q, want %q", name, got[name], typ)
		}
	}
	for _, c := range Columns() {
		if s := Schema().Fields(); len(s) == 0 {
			t.Fatal("no Parquet fields")
		}
		if _, ok := Schema().Lookup(c.Name); !ok && c.Type != "map<string,string>" {
			t.Errorf("column %s not in the Parquet schema", c.Name)
		}
	}
}
