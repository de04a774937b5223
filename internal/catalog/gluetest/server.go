// Package gluetest is an in-memory AWS Glue Data Catalog behind an
// httptest server that speaks Glue's JSON 1.1 protocol (POST /, header
// X-Amz-Target: AWSGlue.<Operation>, Content-Type
// application/x-amz-json-1.1), for testing code that drives the real
// aws-sdk-go-v2 Glue client against it (see Server.Client).
//
// It implements the operations the catalog package uses — GetDatabase,
// CreateDatabase, GetTable, CreateTable, UpdateTable, DeleteTable,
// GetPartitions, BatchCreatePartition, BatchUpdatePartition and
// BatchDeletePartition — with Glue's documented limits and errors:
//
//   - more than 100 partitions in BatchCreatePartition or BatchUpdatePartition,
//     or more than 25 in BatchDeletePartition: InvalidInputException;
//   - GetPartitions MaxResults outside 1..1000: InvalidInputException; pages
//     continue with an opaque NextToken;
//   - a missing database, table or partition: EntityNotFoundException; a
//     database, table or partition created twice: AlreadyExistsException;
//   - per-partition failures of batch calls are reported in the response's
//     Errors list, and the other entries of the call are applied.
//
// Request bodies are decoded strictly: a field this fake does not model is
// an error (so a test cannot silently lose data the client sent).
//
// Faults can be injected: FailEntries fails chosen partitions of a batch call
// once, FailCalls (and Throttle) fail whole calls, Before runs a function
// just before a call is handled (to simulate a concurrent writer). Calls
// records every request.
package gluetest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/glue"
)

// Limits of the Glue API that the server enforces.
const (
	MaxCreatePartitions = 100
	MaxUpdatePartitions = 100
	MaxDeletePartitions = 25
	MaxPartitionsPage   = 1000
)

// Column is a Glue column.
type Column struct {
	Name       string
	Type       string            `json:",omitempty"`
	Comment    string            `json:",omitempty"`
	Parameters map[string]string `json:",omitempty"`
}

// SerDeInfo is a Glue SerDe.
type SerDeInfo struct {
	Name                 string            `json:",omitempty"`
	SerializationLibrary string            `json:",omitempty"`
	Parameters           map[string]string `json:",omitempty"`
}

// Order is a sort column.
type Order struct {
	Column    string
	SortOrder int32
}

// StorageDescriptor is where and how a table or partition is stored.
type StorageDescriptor struct {
	Columns                []Column          `json:",omitempty"`
	Location               string            `json:",omitempty"`
	AdditionalLocations    []string          `json:",omitempty"`
	InputFormat            string            `json:",omitempty"`
	OutputFormat           string            `json:",omitempty"`
	Compressed             bool              `json:",omitempty"`
	NumberOfBuckets        int32             `json:",omitempty"`
	SerdeInfo              *SerDeInfo        `json:",omitempty"`
	BucketColumns          []string          `json:",omitempty"`
	SortColumns            []Order           `json:",omitempty"`
	Parameters             map[string]string `json:",omitempty"`
	StoredAsSubDirectories bool              `json:",omitempty"`
}

// TableInput is a table as clients send it.
type TableInput struct {
	Name              string
	Description       string             `json:",omitempty"`
	Owner             string             `json:",omitempty"`
	Retention         int32              `json:",omitempty"`
	StorageDescriptor *StorageDescriptor `json:",omitempty"`
	PartitionKeys     []Column           `json:",omitempty"`
	TableType         string             `json:",omitempty"`
	Parameters        map[string]string  `json:",omitempty"`
	ViewOriginalText  string             `json:",omitempty"`
	ViewExpandedText  string             `json:",omitempty"`
}

// Table is a stored table.
type Table struct {
	TableInput
	DatabaseName string
	CreateTime   float64 `json:",omitempty"` // epoch seconds
	UpdateTime   float64 `json:",omitempty"`
	VersionId    string  `json:",omitempty"`
}

// PartitionInput is a partition as clients send it.
type PartitionInput struct {
	Values            []string
	StorageDescriptor *StorageDescriptor `json:",omitempty"`
	Parameters        map[string]string  `json:",omitempty"`
	LastAccessTime    float64            `json:",omitempty"`
	LastAnalyzedTime  float64            `json:",omitempty"`
}

// Partition is a stored partition.
type Partition struct {
	PartitionInput
	DatabaseName string
	TableName    string
	CreationTime float64 `json:",omitempty"`
}

// Call is one request the server received.
type Call struct {
	Op      string // e.g. "BatchCreatePartition"
	Table   string // the table named in the request, if any
	Entries int    // partitions in a batch request
	Values  [][]string
	Err     string // the error code the whole call failed with, if it did
}

type database struct {
	name        string
	description string
	tables      map[string]*table
}

type table struct {
	t     Table
	parts map[string]*Partition // by key(values)
}

type entryFault struct {
	op, code string
	values   []string
}

type callFault struct {
	op   string
	n    int
	code string
}

// Server is the fake Glue endpoint.
type Server struct {
	*httptest.Server

	// Now is the server's clock (default time.Now). Set it before use.
	Now func() time.Time

	mu          sync.Mutex
	pageSize    int
	dbs         map[string]*database
	calls       []Call
	entryFaults []entryFault
	callFaults  []*callFault
	before      map[string][]func()
}

// New starts a server; close it with Close.
func New() *Server {
	s := &Server{pageSize: MaxPartitionsPage, Now: time.Now, dbs: map[string]*database{}, before: map[string][]func(){}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// NewT starts a server that is closed when t's test ends.
func NewT(t interface{ Cleanup(func()) }) *Server {
	s := New()
	t.Cleanup(s.Close)
	return s
}

// Client returns a real aws-sdk-go-v2 Glue client for the server: static
// credentials, region us-east-1, and the SDK's standard retryer with 5
// attempts and no backoff delay (so injected throttling is retried at once).
func (s *Server) Client(optFns ...func(*glue.Options)) *glue.Client {
	return glue.New(glue.Options{
		BaseEndpoint: aws.String(s.URL),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRETTEST", ""),
		HTTPClient:   s.Server.Client(),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 5
			o.RateLimiter = ratelimit.None
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		}),
	}, optFns...)
}

// --- fault injection and observation ---

// SetPageSize caps the partitions of one GetPartitions page below the
// client's MaxResults, as Glue may (default 1000).
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageSize = n
}

// FailEntries makes the next occurrence of each partition (its values) in a
// call of op (BatchCreatePartition, BatchUpdatePartition or
// BatchDeletePartition) fail once with code, reported in the response's
// Errors list; the partition is not changed and the call's other entries are
// applied.
func (s *Server) FailEntries(op, code string, values ...[]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range values {
		s.entryFaults = append(s.entryFaults, entryFault{op: op, code: code, values: slices.Clone(v)})
	}
}

// FailCalls makes the next n calls of op fail as a whole with the error
// code: HTTP 500 for InternalServiceException, else 400.
func (s *Server) FailCalls(op string, n int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.callFaults = append(s.callFaults, &callFault{op: op, n: n, code: code})
}

// Throttle makes the next n calls of op fail with ThrottlingException.
func (s *Server) Throttle(op string, n int) { s.FailCalls(op, n, "ThrottlingException") }

// Before runs f once, just before the next call of op is handled (outside
// the server's lock, so f may use the server's methods).
func (s *Server) Before(op string, f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.before[op] = append(s.before[op], f)
}

// Calls returns the requests received for op, or for every op if op is "".
func (s *Server) Calls(op string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if op == "" || c.Op == op {
			out = append(out, c)
		}
	}
	return out
}

// Count returns how many requests for op were received.
func (s *Server) Count(op string) int { return len(s.Calls(op)) }

// ResetCalls forgets the recorded requests.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// --- direct access to the state ---

// HasDatabase reports whether the database exists.
func (s *Server) HasDatabase(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dbs[name] != nil
}

// Table returns a copy of a stored table.
func (s *Server) Table(db, name string) (Table, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.table(db, name)
	if t == nil {
		return Table{}, false
	}
	return clone(t.t), true
}

// Partitions returns copies of a table's partitions, sorted by values.
func (s *Server) Partitions(db, name string) []Partition {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.table(db, name)
	if t == nil {
		return nil
	}
	var out []Partition
	for _, p := range t.sorted() {
		out = append(out, clone(*p))
	}
	return out
}

// PutTable creates or replaces a table directly (creating the database).
func (s *Server) PutTable(db string, in TableInput) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dbs[db]
	if d == nil {
		d = &database{name: db, tables: map[string]*table{}}
		s.dbs[db] = d
	}
	now := s.epoch()
	if t := d.tables[in.Name]; t != nil {
		t.t.TableInput = clone(in)
		t.t.UpdateTime = now
		return
	}
	d.tables[in.Name] = &table{t: Table{TableInput: clone(in), DatabaseName: db, CreateTime: now}, parts: map[string]*Partition{}}
}

// PutPartition creates or replaces a partition directly.
func (s *Server) PutPartition(db, name string, in PartitionInput) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.table(db, name)
	if t == nil {
		return fmt.Errorf("gluetest: no table %s.%s", db, name)
	}
	t.parts[key(in.Values)] = &Partition{PartitionInput: clone(in), DatabaseName: db, TableName: name, CreationTime: s.epoch()}
	return nil
}

// DeletePartition removes a partition directly.
func (s *Server) DeletePartition(db, name string, values []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.table(db, name); t != nil {
		delete(t.parts, key(values))
	}
}

func (s *Server) table(db, name string) *table {
	d := s.dbs[db]
	if d == nil {
		return nil
	}
	return d.tables[name]
}

func (t *table) sorted() []*Partition {
	keys := make([]string, 0, len(t.parts))
	for k := range t.parts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]*Partition, len(keys))
	for i, k := range keys {
		out[i] = t.parts[k]
	}
	return out
}

func key(values []string) string { return strings.Join(values, "\x00") }

func clone[T any](v T) T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

func (s *Server) epoch() float64 { return float64(s.Now().UnixMilli()) / 1000 }

// --- the protocol ---

// apiError is an error response.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func errorf(code, format string, args ...any) *apiError {
	status := http.StatusBadRequest
	switch code {
	case "InternalServiceException":
		status = http.StatusInternalServerError
	case "MissingAuthenticationTokenException", "AccessDeniedException":
		status = http.StatusForbidden
	}
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", "gluetest")
	w.WriteHeader(status)
	w.Write(b)
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("X-Amzn-ErrorType", e.code)
	writeJSON(w, e.status, map[string]string{"__type": e.code, "Message": e.msg})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "AWSGlue.")
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/":
		writeError(w, errorf("UnknownOperationException", "want POST /, got %s %s", r.Method, r.URL.Path))
		return
	case !ok:
		writeError(w, errorf("UnknownOperationException", "bad X-Amz-Target %q", target))
		return
	case r.Header.Get("Content-Type") != "application/x-amz-json-1.1":
		writeError(w, errorf("SerializationException", "Content-Type %q, want application/x-amz-json-1.1", r.Header.Get("Content-Type")))
		return
	case !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential="):
		writeError(w, errorf("MissingAuthenticationTokenException", "request is not signed with SigV4"))
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, errorf("SerializationException", "read body: %v", err))
		return
	}
	s.mu.Lock()
	hooks := s.before[op]
	delete(s.before, op)
	s.mu.Unlock()
	for _, f := range hooks {
		f()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	// The call is recorded before the response is written, so a client
	// that has its answer sees its call in Calls.
	call := describe(op, body)
	var out any
	aerr := errorf("UnknownOperationException", "gluetest does not implement %s", op)
	if h, known := handlers[op]; known {
		// An injected fault fails the call before it changes anything.
		if aerr = s.callFault(op); aerr == nil {
			out, aerr = h(s, body)
		}
	}
	if aerr != nil {
		call.Err = aerr.code
	}
	s.calls = append(s.calls, call)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// describe records what a request is about, leniently.
func describe(op string, body []byte) Call {
	var in struct {
		Name               string
		TableName          string
		TableInput         struct{ Name string }
		PartitionInputList []struct{ Values []string }
		Entries            []struct{ PartitionValueList []string }
		PartitionsToDelete []struct{ Values []string }
	}
	json.Unmarshal(body, &in)
	c := Call{Op: op, Table: in.TableName}
	if op == "GetTable" || op == "DeleteTable" {
		c.Table = in.Name
	}
	if in.TableInput.Name != "" {
		c.Table = in.TableInput.Name
	}
	for _, p := range in.PartitionInputList {
		c.Values = append(c.Values, p.Values)
	}
	for _, e := range in.Entries {
		c.Values = append(c.Values, e.PartitionValueList)
	}
	for _, p := range in.PartitionsToDelete {
		c.Values = append(c.Values, p.Values)
	}
	c.Entries = len(c.Values)
	return c
}

// callFault consumes and returns the injected error for a call of op, if any.
func (s *Server) callFault(op string) *apiError {
	for i, f := range s.callFaults {
		if f.op == op && f.n > 0 {
			f.n--
			if f.n == 0 {
				s.callFaults = slices.Delete(s.callFaults, i, i+1)
			}
			return errorf(f.code, "injected %s", f.code)
		}
	}
	return nil
}

// entryFault consumes and returns the injected error code for one entry.
func (s *Server) entryFault(op string, values []string) string {
	for i, f := range s.entryFaults {
		if f.op == op && slices.Equal(f.values, values) {
			s.entryFaults = slices.Delete(s.entryFaults, i, i+1)
			return f.code
		}
	}
	return ""
}

type handler func(s *Server, body []byte) (any, *apiError)

var handlers = map[string]handler{
	"GetDatabase":          (*Server).getDatabase,
	"CreateDatabase":       (*Server).createDatabase,
	"GetTable":             (*Server).getTable,
	"CreateTable":          (*Server).createTable,
	"UpdateTable":          (*Server).updateTable,
	"DeleteTable":          (*Server).deleteTable,
	"GetPartitions":        (*Server).getPartitions,
	"BatchCreatePartition": (*Server).batchCreatePartition,
	"BatchUpdatePartition": (*Server).batchUpdatePartition,
	"BatchDeletePartition": (*Server).batchDeletePartition,
}

func decode(body []byte, v any) *apiError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf("SerializationException", "gluetest: decode request: %v", err)
	}
	return nil
}

func (s *Server) lookupDB(name string) (*database, *apiError) {
	if name == "" {
		return nil, errorf("InvalidInputException", "DatabaseName is required")
	}
	d := s.dbs[name]
	if d == nil {
		return nil, errorf("EntityNotFoundException", "Database %s not found.", name)
	}
	return d, nil
}

func (s *Server) lookupTable(db, name string) (*table, *apiError) {
	d, err := s.lookupDB(db)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, errorf("InvalidInputException", "TableName is required")
	}
	t := d.tables[name]
	if t == nil {
		return nil, errorf("EntityNotFoundException", "Table %s not found.", name)
	}
	return t, nil
}

func (s *Server) getDatabase(body []byte) (any, *apiError) {
	var in struct {
		CatalogId string
		Name      string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	d, err := s.lookupDB(in.Name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"Database": map[string]any{"Name": d.name, "Description": d.description}}, nil
}

func (s *Server) createDatabase(body []byte) (any, *apiError) {
	var in struct {
		CatalogId     string
		DatabaseInput struct {
			Name        string
			Description string
			LocationUri string
			Parameters  map[string]string
		}
		Tags map[string]string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	name := in.DatabaseInput.Name
	if name == "" {
		return nil, errorf("InvalidInputException", "DatabaseInput.Name is required")
	}
	if s.dbs[name] != nil {
		return nil, errorf("AlreadyExistsException", "Database already exists.")
	}
	s.dbs[name] = &database{name: name, description: in.DatabaseInput.Description, tables: map[string]*table{}}
	return struct{}{}, nil
}

func (s *Server) getTable(body []byte) (any, *apiError) {
	var in struct {
		CatalogId    string
		DatabaseName string
		Name         string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	t, err := s.lookupTable(in.DatabaseName, in.Name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"Table": t.t}, nil
}

func checkTableInput(in *TableInput) *apiError {
	if in.Name == "" {
		return errorf("InvalidInputException", "TableInput.Name is required")
	}
	for _, c := range in.PartitionKeys {
		if c.Name == "" {
			return errorf("InvalidInputException", "a partition key has no name")
		}
	}
	if in.StorageDescriptor != nil {
		for _, c := range in.StorageDescriptor.Columns {
			if c.Name == "" {
				return errorf("InvalidInputException", "a column has no name")
			}
		}
	}
	return nil
}

func (s *Server) createTable(body []byte) (any, *apiError) {
	var in struct {
		CatalogId    string
		DatabaseName string
		TableInput   TableInput
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	d, err := s.lookupDB(in.DatabaseName)
	if err != nil {
		return nil, err
	}
	if err := checkTableInput(&in.TableInput); err != nil {
		return nil, err
	}
	if d.tables[in.TableInput.Name] != nil {
		return nil, errorf("AlreadyExistsException", "Table already exists.")
	}
	d.tables[in.TableInput.Name] = &table{
		t:     Table{TableInput: in.TableInput, DatabaseName: d.name, CreateTime: s.epoch(), VersionId: "1"},
		parts: map[string]*Partition{},
	}
	return struct{}{}, nil
}

func (s *Server) updateTable(body []byte) (any, *apiError) {
	var in struct {
		CatalogId     string
		DatabaseName  string
		TableInput    TableInput
		SkipArchive   *bool
		Force         bool
		VersionId     string
		TransactionId string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := checkTableInput(&in.TableInput); err != nil {
		return nil, err
	}
	t, err := s.lookupTable(in.DatabaseName, in.TableInput.Name)
	if err != nil {
		return nil, err
	}
	t.t.TableInput = in.TableInput
	t.t.UpdateTime = s.epoch()
	var v int
	fmt.Sscan(t.t.VersionId, &v)
	t.t.VersionId = fmt.Sprint(v + 1)
	return struct{}{}, nil
}

func (s *Server) deleteTable(body []byte) (any, *apiError) {
	var in struct {
		CatalogId    string
		DatabaseName string
		Name         string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if _, err := s.lookupTable(in.DatabaseName, in.Name); err != nil {
		return nil, err
	}
	delete(s.dbs[in.DatabaseName].tables, in.Name)
	return struct{}{}, nil
}

type pageToken struct {
	After string `json:"after"`
}

func (s *Server) getPartitions(body []byte) (any, *apiError) {
	var in struct {
		CatalogId           string
		DatabaseName        string
		TableName           string
		Expression          string
		ExcludeColumnSchema *bool
		MaxResults          *int32
		NextToken           string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.Expression != "" {
		return nil, errorf("InvalidInputException", "gluetest does not evaluate Expression")
	}
	limit := MaxPartitionsPage
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > MaxPartitionsPage {
			return nil, errorf("InvalidInputException", "MaxResults must be between 1 and %d, got %d", MaxPartitionsPage, *in.MaxResults)
		}
		limit = int(*in.MaxResults)
	}
	limit = min(limit, max(s.pageSize, 1))
	after := ""
	if in.NextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(in.NextToken)
		var tok pageToken
		if err != nil || json.Unmarshal(b, &tok) != nil || tok.After == "" {
			return nil, errorf("InvalidInputException", "invalid NextToken")
		}
		after = tok.After
	}
	t, err := s.lookupTable(in.DatabaseName, in.TableName)
	if err != nil {
		return nil, err
	}
	var page []Partition
	next := ""
	for _, p := range t.sorted() {
		k := key(p.Values)
		if after != "" && k <= after {
			continue
		}
		if len(page) == limit {
			b, _ := json.Marshal(pageToken{After: key(page[len(page)-1].Values)})
			next = base64.RawURLEncoding.EncodeToString(b)
			break
		}
		c := clone(*p)
		if in.ExcludeColumnSchema != nil && *in.ExcludeColumnSchema && c.StorageDescriptor != nil {
			c.StorageDescriptor.Columns = nil
		}
		page = append(page, c)
	}
	out := map[string]any{"Partitions": page}
	if page == nil {
		out["Partitions"] = []Partition{}
	}
	if next != "" {
		out["NextToken"] = next
	}
	return out, nil
}

type errorDetail struct {
	ErrorCode    string
	ErrorMessage string
}

func checkValues(t *table, values []string) string {
	if len(values) != len(t.t.PartitionKeys) {
		return fmt.Sprintf("the table has %d partition keys, the partition has %d values", len(t.t.PartitionKeys), len(values))
	}
	return ""
}

func (s *Server) batchCreatePartition(body []byte) (any, *apiError) {
	var in struct {
		CatalogId          string
		DatabaseName       string
		TableName          string
		PartitionInputList []PartitionInput
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if len(in.PartitionInputList) > MaxCreatePartitions {
		return nil, errorf("InvalidInputException", "1 validation error detected: Value at 'partitionInputList' failed to satisfy constraint: Member must have length less than or equal to %d", MaxCreatePartitions)
	}
	if len(in.PartitionInputList) == 0 {
		return nil, errorf("InvalidInputException", "PartitionInputList is required")
	}
	t, err := s.lookupTable(in.DatabaseName, in.TableName)
	if err != nil {
		return nil, err
	}
	type perr struct {
		PartitionValues []string
		ErrorDetail     errorDetail
	}
	var errs []perr
	for _, p := range in.PartitionInputList {
		code, msg := s.entryFault("BatchCreatePartition", p.Values), "injected"
		if code == "" {
			if m := checkValues(t, p.Values); m != "" {
				code, msg = "InvalidInputException", m
			} else if t.parts[key(p.Values)] != nil {
				code, msg = "AlreadyExistsException", "Partition already exists."
			}
		}
		if code != "" {
			errs = append(errs, perr{p.Values, errorDetail{code, msg}})
			continue
		}
		t.parts[key(p.Values)] = &Partition{PartitionInput: p, DatabaseName: in.DatabaseName, TableName: in.TableName, CreationTime: s.epoch()}
	}
	if errs == nil {
		return struct{}{}, nil
	}
	return map[string]any{"Errors": errs}, nil
}

func (s *Server) batchUpdatePartition(body []byte) (any, *apiError) {
	type entry struct {
		PartitionValueList []string
		PartitionInput     PartitionInput
	}
	var in struct {
		CatalogId    string
		DatabaseName string
		TableName    string
		Entries      []entry
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if len(in.Entries) > MaxUpdatePartitions {
		return nil, errorf("InvalidInputException", "1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length less than or equal to %d", MaxUpdatePartitions)
	}
	if len(in.Entries) == 0 {
		return nil, errorf("InvalidInputException", "Entries is required")
	}
	t, err := s.lookupTable(in.DatabaseName, in.TableName)
	if err != nil {
		return nil, err
	}
	type ferr struct {
		PartitionValueList []string
		ErrorDetail        errorDetail
	}
	var errs []ferr
	for _, e := range in.Entries {
		code, msg := s.entryFault("BatchUpdatePartition", e.PartitionValueList), "injected"
		old := t.parts[key(e.PartitionValueList)]
		if code == "" {
			if m := checkValues(t, e.PartitionInput.Values); m != "" {
				code, msg = "InvalidInputException", m
			} else if old == nil {
				code, msg = "EntityNotFoundException", "Partition not found."
			} else if !slices.Equal(e.PartitionInput.Values, e.PartitionValueList) && t.parts[key(e.PartitionInput.Values)] != nil {
				code, msg = "AlreadyExistsException", "Partition already exists."
			}
		}
		if code != "" {
			errs = append(errs, ferr{e.PartitionValueList, errorDetail{code, msg}})
			continue
		}
		delete(t.parts, key(e.PartitionValueList))
		t.parts[key(e.PartitionInput.Values)] = &Partition{PartitionInput: e.PartitionInput, DatabaseName: in.DatabaseName,
			TableName: in.TableName, CreationTime: old.CreationTime}
	}
	if errs == nil {
		return struct{}{}, nil
	}
	return map[string]any{"Errors": errs}, nil
}

func (s *Server) batchDeletePartition(body []byte) (any, *apiError) {
	var in struct {
		CatalogId          string
		DatabaseName       string
		TableName          string
		PartitionsToDelete []struct{ Values []string }
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if len(in.PartitionsToDelete) > MaxDeletePartitions {
		return nil, errorf("InvalidInputException", "1 validation error detected: Value at 'partitionsToDelete' failed to satisfy constraint: Member must have length less than or equal to %d", MaxDeletePartitions)
	}
	if len(in.PartitionsToDelete) == 0 {
		return nil, errorf("InvalidInputException", "PartitionsToDelete is required")
	}
	t, err := s.lookupTable(in.DatabaseName, in.TableName)
	if err != nil {
		return nil, err
	}
	type perr struct {
		PartitionValues []string
		ErrorDetail     errorDetail
	}
	var errs []perr
	for _, p := range in.PartitionsToDelete {
		code, msg := s.entryFault("BatchDeletePartition", p.Values), "injected"
		if code == "" && t.parts[key(p.Values)] == nil {
			code, msg = "EntityNotFoundException", "Partition not found."
		}
		if code != "" {
			errs = append(errs, perr{p.Values, errorDetail{code, msg}})
			continue
		}
		delete(t.parts, key(p.Values))
	}
	if errs == nil {
		return struct{}{}, nil
	}
	return map[string]any{"Errors": errs}, nil
}
