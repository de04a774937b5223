package catalog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	"github.com/aws/aws-sdk-go-v2/service/glue/types"
	"github.com/aws/smithy-go"

	"github.com/littlewarehouse/warehouse/internal/wait"
)

// Glue API limits (docs/design.md §Where it runs).
const (
	MaxCreateBatch = 100  // partitions per BatchCreatePartition
	MaxUpdateBatch = 100  // entries per BatchUpdatePartition
	MaxDeleteBatch = 25   // partitions per BatchDeletePartition
	MaxPartsPage   = 1000 // partitions per GetPartitions page
)

// DefaultDatabase is the Glue database used when none is given.
const DefaultDatabase = "warehouse"

// Error codes of Glue the catalog acts on.
const (
	codeAlreadyExists = "AlreadyExistsException"
	codeNotFound      = "EntityNotFoundException"
)

// permanentCodes are per-entry batch errors that a retry cannot fix.
var permanentCodes = map[string]bool{
	"InvalidInputException":                true,
	"AccessDeniedException":                true,
	"ResourceNumberLimitExceededException": true,
	"GlueEncryptionException":              true,
	"ValidationException":                  true,
}

// GlueOptions configure a Glue catalog. The zero value is usable.
type GlueOptions struct {
	// Database is the Glue database (default "warehouse"); EnsureTables
	// creates it if it is missing.
	Database string
	// CatalogID is the Glue catalog (AWS account) id; empty means the
	// caller's account.
	CatalogID string
	// Endpoint overrides the Glue endpoint in OpenGlue (tests, or a
	// Glue-compatible server). AWS_ENDPOINT_URL_GLUE works too.
	Endpoint string
	// Now is the clock of Partition.Since (default time.Now).
	Now func() time.Time
	// EntryAttempts bounds how often one partition of a batch call is tried
	// when the call succeeds but reports that entry as failed (default 5).
	// Failed calls as a whole are retried by the SDK's retryer.
	EntryAttempts int
	// Backoff is the pause before retrying failed entries, by retry round
	// (1, 2, ...). Default: 200 ms doubling to at most 5 s, with jitter.
	Backoff func(round int) time.Duration
	// Sleep waits (default: a timer that ctx can cancel); tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Glue is a Catalog over the AWS Glue Data Catalog.
//
// It uses these Glue actions (for IAM): glue:GetDatabase,
// glue:CreateDatabase, glue:GetTable, glue:CreateTable, glue:UpdateTable,
// glue:GetPartitions, glue:BatchCreatePartition, glue:BatchUpdatePartition
// and glue:BatchDeletePartition.
//
// Calls that fail as a whole (throttling, 5xx, network) are retried by the
// client's retryer; OpenGlue configures the SDK's standard retryer with 10
// attempts and no client-side retry quota. Batch calls that succeed but list
// failed entries are retried for those entries only, up to EntryAttempts
// tries each with backoff; a create that finds the partition already there
// becomes an update, and an update that finds it gone becomes a create.
type Glue struct {
	client *glue.Client
	db     string
	opt    GlueOptions

	mu      sync.Mutex
	dbReady bool
}

var _ Catalog = (*Glue)(nil)

// NewGlue returns a Glue catalog that uses client as it is configured.
func NewGlue(client *glue.Client, opt GlueOptions) *Glue {
	if opt.Database == "" {
		opt.Database = DefaultDatabase
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.EntryAttempts <= 0 {
		opt.EntryAttempts = 5
	}
	if opt.Backoff == nil {
		opt.Backoff = defaultBackoff
	}
	if opt.Sleep == nil {
		opt.Sleep = wait.Sleep
	}
	return &Glue{client: client, db: opt.Database, opt: opt}
}

// OpenGlue returns a Glue catalog with region and credentials from the
// SDK's default chain (environment, shared config, SSO, web identity,
// container and instance roles).
func OpenGlue(ctx context.Context, opt GlueOptions) (*Glue, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("catalog: load AWS config: %w", err)
	}
	maxAttempts := cfg.RetryMaxAttempts
	if maxAttempts == 0 {
		maxAttempts = 10
	}
	client := glue.NewFromConfig(cfg, func(o *glue.Options) {
		if opt.Endpoint != "" {
			o.BaseEndpoint = aws.String(opt.Endpoint)
			if o.Region == "" {
				o.Region = "us-east-1"
			}
		}
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = maxAttempts
			so.RateLimiter = ratelimit.None
		})
	})
	if client.Options().Region == "" {
		return nil, errors.New("catalog: glue: no AWS region configured (set AWS_REGION or a profile region)")
	}
	return NewGlue(client, opt), nil
}

func (g *Glue) String() string { return "glue database " + g.db }

// Database returns the Glue database name.
func (g *Glue) Database() string { return g.db }

func defaultBackoff(round int) time.Duration {
	d := 200 * time.Millisecond << min(round-1, 5)
	d = min(d, 5*time.Second)
	return d/2 + rand.N(d/2+1)
}

func (g *Glue) catalogID() *string {
	if g.opt.CatalogID == "" {
		return nil
	}
	return aws.String(g.opt.CatalogID)
}

// errorCode returns the AWS error code of err, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// callErr wraps an error of a whole call.
func (g *Glue) callErr(op, table string, err error) error {
	if table == "" {
		return fmt.Errorf("catalog: glue %s (database %s): %w", op, g.db, err)
	}
	if errorCode(err) == codeNotFound {
		return fmt.Errorf("catalog: glue %s %s.%s: %w: %w", op, g.db, table, ErrNoTable, err)
	}
	return fmt.Errorf("catalog: glue %s %s.%s: %w", op, g.db, table, err)
}

func (g *Glue) ensureDatabase(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dbReady {
		return nil
	}
	_, err := g.client.GetDatabase(ctx, &glue.GetDatabaseInput{CatalogId: g.catalogID(), Name: aws.String(g.db)})
	if errorCode(err) == codeNotFound {
		_, err = g.client.CreateDatabase(ctx, &glue.CreateDatabaseInput{
			CatalogId: g.catalogID(),
			DatabaseInput: &types.DatabaseInput{
				Name:        aws.String(g.db),
				Description: aws.String("Little Warehouse: curated tables and raw events"),
			},
		})
		if errorCode(err) == codeAlreadyExists {
			err = nil // created by someone else meanwhile
		}
		if err != nil {
			return g.callErr("CreateDatabase", "", err)
		}
	} else if err != nil {
		return g.callErr("GetDatabase", "", err)
	}
	g.dbReady = true
	return nil
}

func (g *Glue) getTable(ctx context.Context, table string) (*types.Table, error) {
	out, err := g.client.GetTable(ctx, &glue.GetTableInput{CatalogId: g.catalogID(), DatabaseName: aws.String(g.db), Name: aws.String(table)})
	if err != nil {
		return nil, g.callErr("GetTable", table, err)
	}
	if out.Table == nil {
		return nil, fmt.Errorf("catalog: glue GetTable %s.%s: no table in the response", g.db, table)
	}
	return out.Table, nil
}

func checkS3(what, loc string) error {
	if !strings.HasPrefix(loc, "s3://") {
		return fmt.Errorf("catalog: glue needs s3:// locations, but %s is at %q (use --catalog local for a local store)", what, loc)
	}
	return nil
}

// EnsureTables implements Catalog.
func (g *Glue) EnsureTables(ctx context.Context, tables []TableDef) error {
	if err := g.ensureDatabase(ctx); err != nil {
		return err
	}
	var errs []error
	for _, def := range tables {
		if err := g.ensureTable(ctx, def); err != nil {
			if ctx.Err() != nil {
				return errors.Join(append(errs, err)...)
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (g *Glue) ensureTable(ctx context.Context, def TableDef) error {
	if err := def.validate(); err != nil {
		return err
	}
	if err := checkS3("table "+def.Name, def.Location); err != nil {
		return err
	}
	t, err := g.getTable(ctx, def.Name)
	if errors.Is(err, ErrNoTable) {
		_, err = g.client.CreateTable(ctx, &glue.CreateTableInput{
			CatalogId: g.catalogID(), DatabaseName: aws.String(g.db), TableInput: tableInput(def, nil),
		})
		if err == nil {
			return nil
		}
		if errorCode(err) != codeAlreadyExists {
			return g.callErr("CreateTable", def.Name, err)
		}
		// Created by someone else since GetTable: bring it up to date.
		t, err = g.getTable(ctx, def.Name)
	}
	if err != nil {
		return err
	}
	return g.reconcile(ctx, t, def)
}

// reconcile brings the existing table t to def, or returns a *DriftError.
func (g *Glue) reconcile(ctx context.Context, t *types.Table, def TableDef) error {
	var have []Column
	if t.StorageDescriptor != nil {
		have = fromGlueColumns(t.StorageDescriptor.Columns)
	}
	_, problems := diffColumns(have, def.Columns)
	problems = append(problems, diffKeys(fromGlueColumns(t.PartitionKeys), def.PartitionKeys)...)
	if len(problems) > 0 {
		return g.driftError(ctx, def, problems)
	}
	want := tableInput(def, t.Parameters)
	if !def.Projected() && !sameShape(t.StorageDescriptor, want.StorageDescriptor) {
		// New trailing columns (or a new SerDe): partitions first, table
		// last, so that if this stops halfway the table still differs
		// and the next run finishes the job.
		if err := g.rewritePartitions(ctx, def.Name, want.StorageDescriptor); err != nil {
			return err
		}
	}
	if sameTable(t, want) {
		return nil
	}
	_, err := g.client.UpdateTable(ctx, &glue.UpdateTableInput{
		CatalogId: g.catalogID(), DatabaseName: aws.String(g.db), TableInput: want,
	})
	if err != nil {
		return g.callErr("UpdateTable", def.Name, err)
	}
	return nil
}

func (g *Glue) driftError(ctx context.Context, def TableDef, problems []string) error {
	del := fmt.Sprintf("aws glue delete-table --database-name %s --name %s", g.db, def.Name)
	if g.opt.CatalogID != "" {
		del += " --catalog-id " + g.opt.CatalogID
	}
	var mig string
	if def.Projected() {
		mig = fmt.Sprintf("%s (the raw data stays; the next run recreates the table with the new columns).", del)
	} else {
		parts, _ := g.Partitions(ctx, def.Name)
		from, to := dayRange(parts)
		mig = fmt.Sprintf("%s (this drops the table and its partition entries, not the data), then rebuild its days with the new schema: rollup --force --from %s --to %s (the run recreates the table and registers the rebuilt partitions; until then queries of this table fail).",
			del, from, to)
	}
	return &DriftError{Catalog: g.String(), Table: def.Name, Problems: problems, Migrate: mig}
}

// rewritePartitions gives every partition of table the storage descriptor
// sd (keeping each partition's location and parameters).
func (g *Glue) rewritePartitions(ctx context.Context, table string, sd *types.StorageDescriptor) error {
	parts, err := g.listPartitions(ctx, table, true)
	if err != nil {
		return err
	}
	var entries []*entry
	for _, p := range parts {
		if p.StorageDescriptor == nil || sameShape(p.StorageDescriptor, sd) {
			continue
		}
		entries = append(entries, &entry{
			values: p.Values, location: aws.ToString(p.StorageDescriptor.Location),
			params: maps.Clone(p.Parameters), update: true, keepGone: true,
		})
	}
	return g.apply(ctx, table, sd, entries)
}

func (g *Glue) listPartitions(ctx context.Context, table string, withColumns bool) ([]types.Partition, error) {
	var parts []types.Partition
	var token *string
	for {
		out, err := g.client.GetPartitions(ctx, &glue.GetPartitionsInput{
			CatalogId: g.catalogID(), DatabaseName: aws.String(g.db), TableName: aws.String(table),
			ExcludeColumnSchema: aws.Bool(!withColumns), MaxResults: aws.Int32(MaxPartsPage), NextToken: token,
		})
		if err != nil {
			return nil, g.callErr("GetPartitions", table, err)
		}
		parts = append(parts, out.Partitions...)
		if aws.ToString(out.NextToken) == "" {
			return parts, nil
		}
		token = out.NextToken
	}
}

// Table implements Catalog.
func (g *Glue) Table(ctx context.Context, table string) (TableDef, error) {
	t, err := g.getTable(ctx, table)
	if err != nil {
		return TableDef{}, err
	}
	def := TableDef{
		Name: aws.ToString(t.Name), Comment: aws.ToString(t.Description), TableType: aws.ToString(t.TableType),
		PartitionKeys: fromGlueColumns(t.PartitionKeys), Parameters: t.Parameters,
	}
	if sd := t.StorageDescriptor; sd != nil {
		def.Columns = fromGlueColumns(sd.Columns)
		def.Location = aws.ToString(sd.Location)
		def.InputFormat, def.OutputFormat = aws.ToString(sd.InputFormat), aws.ToString(sd.OutputFormat)
		if sd.SerdeInfo != nil {
			def.SerDe, def.SerDeParameters = aws.ToString(sd.SerdeInfo.SerializationLibrary), sd.SerdeInfo.Parameters
		}
	}
	return def, nil
}

// Partitions implements Catalog.
func (g *Glue) Partitions(ctx context.Context, table string) (map[string]Partition, error) {
	parts, err := g.listPartitions(ctx, table, false)
	if err != nil {
		return nil, err
	}
	m := make(map[string]Partition, len(parts))
	for _, p := range parts {
		dt := strings.Join(p.Values, "/")
		q := Partition{DT: dt}
		if p.StorageDescriptor != nil {
			q.Location = aws.ToString(p.StorageDescriptor.Location)
		}
		if s := p.Parameters[SinceParameter]; s != "" {
			q.Since, _ = time.Parse(time.RFC3339Nano, s)
		}
		m[dt] = q
	}
	return m, nil
}

// SetPartitions implements Catalog.
func (g *Glue) SetPartitions(ctx context.Context, table string, parts []Partition) error {
	parts, err := checkParts(table, parts)
	if err != nil || len(parts) == 0 {
		return err
	}
	for _, p := range parts {
		if err := checkS3(fmt.Sprintf("partition %s dt=%s", table, p.DT), p.Location); err != nil {
			return err
		}
	}
	t, err := g.getTable(ctx, table)
	if err != nil {
		return err
	}
	if t.Parameters["projection.enabled"] == "true" {
		return fmt.Errorf("catalog: %s.%s uses partition projection; its partitions are not registered", g.db, table)
	}
	if t.StorageDescriptor == nil {
		return fmt.Errorf("catalog: %s.%s has no storage descriptor", g.db, table)
	}
	existing, err := g.listPartitions(ctx, table, false)
	if err != nil {
		return err
	}
	cur := map[string]types.Partition{}
	for _, p := range existing {
		cur[strings.Join(p.Values, "/")] = p
	}
	var entries []*entry
	for _, p := range parts {
		e := &entry{values: []string{p.DT}, location: p.Location, setSince: true}
		if old, ok := cur[p.DT]; ok {
			if old.StorageDescriptor != nil && dirURL(aws.ToString(old.StorageDescriptor.Location)) == p.Location {
				continue
			}
			e.update = true
			e.params = maps.Clone(old.Parameters)
		}
		entries = append(entries, e)
	}
	return g.apply(ctx, table, t.StorageDescriptor, entries)
}

// entry is one partition to create or update.
type entry struct {
	values   []string
	location string
	params   map[string]string // parameters to keep
	update   bool              // update (else create)
	setSince bool              // record the switch time in SinceParameter
	keepGone bool              // an update of a partition that is gone is dropped, not created
	tries    int
	lastErr  string
}

func key(values []string) string { return strings.Join(values, "\x00") }

func (g *Glue) partitionInput(e *entry, sd *types.StorageDescriptor) *types.PartitionInput {
	s := *sd
	s.Location = aws.String(e.location)
	params := maps.Clone(e.params)
	if e.setSince {
		if params == nil {
			params = map[string]string{}
		}
		params[SinceParameter] = g.opt.Now().UTC().Format(time.RFC3339Nano)
	}
	return &types.PartitionInput{Values: e.values, StorageDescriptor: &s, Parameters: params}
}

// apply creates and updates partitions in batches, retrying failed entries.
func (g *Glue) apply(ctx context.Context, table string, sd *types.StorageDescriptor, entries []*entry) error {
	var failed []string
	for round := 0; len(entries) > 0; round++ {
		var creates, updates, next []*entry
		for _, e := range entries {
			if e.update {
				updates = append(updates, e)
			} else {
				creates = append(creates, e)
			}
		}
		backoff := false
		// handle decides what becomes of an entry the call reported as failed.
		handle := func(e *entry, d *types.ErrorDetail) {
			code, msg := "", ""
			if d != nil {
				code, msg = aws.ToString(d.ErrorCode), aws.ToString(d.ErrorMessage)
			}
			e.tries++
			e.lastErr = strings.TrimSpace(code + ": " + msg)
			switch {
			case !e.update && code == codeAlreadyExists:
				e.update = true // created meanwhile: switch it instead
			case e.update && code == codeNotFound && e.keepGone:
				return // deleted meanwhile: nothing to rewrite
			case e.update && code == codeNotFound:
				e.update = false // deleted meanwhile: create it
			case permanentCodes[code]:
				failed = append(failed, fmt.Sprintf("dt=%s: %s", strings.Join(e.values, "/"), e.lastErr))
				return
			default:
				backoff = true
			}
			if e.tries >= g.opt.EntryAttempts {
				failed = append(failed, fmt.Sprintf("dt=%s: %s (after %d tries)", strings.Join(e.values, "/"), e.lastErr, e.tries))
				return
			}
			next = append(next, e)
		}
		for chunk := range slices.Chunk(creates, MaxCreateBatch) {
			in := make([]types.PartitionInput, len(chunk))
			for i, e := range chunk {
				in[i] = *g.partitionInput(e, sd)
			}
			out, err := g.client.BatchCreatePartition(ctx, &glue.BatchCreatePartitionInput{
				CatalogId: g.catalogID(), DatabaseName: aws.String(g.db), TableName: aws.String(table), PartitionInputList: in,
			})
			if err != nil {
				return g.callErr("BatchCreatePartition", table, err)
			}
			errs := map[string]*types.ErrorDetail{}
			for _, pe := range out.Errors {
				errs[key(pe.PartitionValues)] = pe.ErrorDetail
			}
			for _, e := range chunk {
				if d, bad := errs[key(e.values)]; bad {
					handle(e, d)
				}
			}
		}
		for chunk := range slices.Chunk(updates, MaxUpdateBatch) {
			in := make([]types.BatchUpdatePartitionRequestEntry, len(chunk))
			for i, e := range chunk {
				in[i] = types.BatchUpdatePartitionRequestEntry{PartitionValueList: e.values, PartitionInput: g.partitionInput(e, sd)}
			}
			out, err := g.client.BatchUpdatePartition(ctx, &glue.BatchUpdatePartitionInput{
				CatalogId: g.catalogID(), DatabaseName: aws.String(g.db), TableName: aws.String(table), Entries: in,
			})
			if err != nil {
				return g.callErr("BatchUpdatePartition", table, err)
			}
			errs := map[string]*types.ErrorDetail{}
			for _, fe := range out.Errors {
				errs[key(fe.PartitionValueList)] = fe.ErrorDetail
			}
			for _, e := range chunk {
				if d, bad := errs[key(e.values)]; bad {
					handle(e, d)
				}
			}
		}
		entries = next
		if len(entries) > 0 && backoff {
			if err := g.opt.Sleep(ctx, g.opt.Backoff(round+1)); err != nil {
				return fmt.Errorf("catalog: glue %s.%s: %w", g.db, table, err)
			}
		}
	}
	return partitionsErr(g.db, table, "registered", failed)
}

func partitionsErr(db, table, what string, failed []string) error {
	if len(failed) == 0 {
		return nil
	}
	shown := failed
	if len(shown) > 10 {
		shown = append(shown[:10:10], fmt.Sprintf("... and %d more", len(failed)-10))
	}
	return fmt.Errorf("catalog: glue %s.%s: %d partitions not %s (each still points where it did): %s",
		db, table, len(failed), what, strings.Join(shown, "; "))
}

// DropPartitions implements Catalog.
func (g *Glue) DropPartitions(ctx context.Context, table string, dts []string) error {
	type del struct {
		values []string
		tries  int
	}
	var pending []*del
	for _, dt := range slices.Compact(slices.Sorted(slices.Values(dts))) {
		pending = append(pending, &del{values: []string{dt}})
	}
	var failed []string
	for round := 0; len(pending) > 0; round++ {
		var next []*del
		for chunk := range slices.Chunk(pending, MaxDeleteBatch) {
			in := make([]types.PartitionValueList, len(chunk))
			for i, d := range chunk {
				in[i] = types.PartitionValueList{Values: d.values}
			}
			out, err := g.client.BatchDeletePartition(ctx, &glue.BatchDeletePartitionInput{
				CatalogId: g.catalogID(), DatabaseName: aws.String(g.db), TableName: aws.String(table), PartitionsToDelete: in,
			})
			if err != nil {
				return g.callErr("BatchDeletePartition", table, err)
			}
			errs := map[string]*types.ErrorDetail{}
			for _, pe := range out.Errors {
				errs[key(pe.PartitionValues)] = pe.ErrorDetail
			}
			for _, d := range chunk {
				det, bad := errs[key(d.values)]
				if !bad {
					continue
				}
				code, msg := "", ""
				if det != nil {
					code, msg = aws.ToString(det.ErrorCode), aws.ToString(det.ErrorMessage)
				}
				d.tries++
				switch {
				case code == codeNotFound:
				case permanentCodes[code] || d.tries >= g.opt.EntryAttempts:
					failed = append(failed, fmt.Sprintf("dt=%s: %s: %s", strings.Join(d.values, "/"), code, msg))
				default:
					next = append(next, d)
				}
			}
		}
		pending = next
		if len(pending) > 0 {
			if err := g.opt.Sleep(ctx, g.opt.Backoff(round+1)); err != nil {
				return fmt.Errorf("catalog: glue %s.%s: %w", g.db, table, err)
			}
		}
	}
	return partitionsErr(g.db, table, "deleted", failed)
}

// --- conversions between TableDef and Glue shapes ---

func toGlueColumns(cols []Column) []types.Column {
	out := make([]types.Column, len(cols))
	for i, c := range cols {
		out[i] = types.Column{Name: aws.String(c.Name), Type: aws.String(c.Type)}
		if c.Comment != "" {
			out[i].Comment = aws.String(c.Comment)
		}
	}
	return out
}

func fromGlueColumns(cols []types.Column) []Column {
	out := make([]Column, len(cols))
	for i, c := range cols {
		out[i] = Column{Name: aws.ToString(c.Name), Type: aws.ToString(c.Type), Comment: aws.ToString(c.Comment)}
	}
	return out
}

// ownedParameter reports whether a table parameter is one the definitions
// manage even when a definition leaves it out (so it is removed, not kept).
func ownedParameter(k string) bool {
	return strings.HasPrefix(k, "projection.") || k == "storage.location.template"
}

// tableInput is the Glue table for def. Parameters of the existing table
// that def does not manage (set by Athena or by hand) are kept.
func tableInput(def TableDef, existing map[string]string) *types.TableInput {
	params := map[string]string{}
	for k, v := range existing {
		if !ownedParameter(k) {
			params[k] = v
		}
	}
	maps.Copy(params, def.Parameters)
	return &types.TableInput{
		Name:          aws.String(def.Name),
		Description:   aws.String(def.Comment),
		TableType:     aws.String(def.TableType),
		Parameters:    params,
		PartitionKeys: toGlueColumns(def.PartitionKeys),
		StorageDescriptor: &types.StorageDescriptor{
			Columns:      toGlueColumns(def.Columns),
			Location:     aws.String(def.Location),
			InputFormat:  aws.String(def.InputFormat),
			OutputFormat: aws.String(def.OutputFormat),
			SerdeInfo: &types.SerDeInfo{
				SerializationLibrary: aws.String(def.SerDe),
				Parameters:           maps.Clone(def.SerDeParameters),
			},
		},
	}
}

// sameShape reports whether two storage descriptors read files the same way:
// the same columns (names and types) and the same SerDe and formats.
// Locations and comments do not count.
func sameShape(a, b *types.StorageDescriptor) bool {
	if a == nil || b == nil {
		return a == b
	}
	if len(a.Columns) != len(b.Columns) {
		return false
	}
	for i := range a.Columns {
		if aws.ToString(a.Columns[i].Name) != aws.ToString(b.Columns[i].Name) ||
			normType(aws.ToString(a.Columns[i].Type)) != normType(aws.ToString(b.Columns[i].Type)) {
			return false
		}
	}
	return aws.ToString(a.InputFormat) == aws.ToString(b.InputFormat) &&
		aws.ToString(a.OutputFormat) == aws.ToString(b.OutputFormat) &&
		serde(a) == serde(b)
}

func serde(sd *types.StorageDescriptor) string {
	if sd.SerdeInfo == nil {
		return ""
	}
	return aws.ToString(sd.SerdeInfo.SerializationLibrary)
}

func sameColumns(a, b []types.Column) bool {
	return slices.EqualFunc(a, b, func(x, y types.Column) bool {
		return aws.ToString(x.Name) == aws.ToString(y.Name) && aws.ToString(x.Type) == aws.ToString(y.Type) &&
			aws.ToString(x.Comment) == aws.ToString(y.Comment)
	})
}

// sameTable reports whether t already is what UpdateTable(want) would make it.
func sameTable(t *types.Table, want *types.TableInput) bool {
	if aws.ToString(t.Description) != aws.ToString(want.Description) ||
		aws.ToString(t.TableType) != aws.ToString(want.TableType) ||
		!maps.Equal(t.Parameters, want.Parameters) ||
		!sameColumns(t.PartitionKeys, want.PartitionKeys) {
		return false
	}
	a, b := t.StorageDescriptor, want.StorageDescriptor
	if a == nil || !sameShape(a, b) || !sameColumns(a.Columns, b.Columns) ||
		aws.ToString(a.Location) != aws.ToString(b.Location) {
		return false
	}
	var ap map[string]string
	if a.SerdeInfo != nil {
		ap = a.SerdeInfo.Parameters
	}
	return maps.Equal(ap, b.SerdeInfo.Parameters)
}
