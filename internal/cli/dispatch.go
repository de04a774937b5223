package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/oklog/ulid/v2"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/lambda"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/internal/wait"
)

// dispatch runs the job on AWS instead of here. target is either
// "sfn:STATE_MACHINE_ARN" (dispatchSFN: the nightly state machine runs the
// whole range) or "lambda:FUNCTION" (dispatchDay: one day built by the
// function, the windowed stage and registration here).
func dispatch(ctx context.Context, cfg job.Config, target string, follow time.Duration, stdout, stderr io.Writer) error {
	kind, name, _ := strings.Cut(target, ":")
	if name == "" || (kind != "sfn" && kind != "lambda") {
		return usagef("--dispatch %q: want sfn:STATE_MACHINE_ARN (a range) or lambda:FUNCTION (one day)", target)
	}
	if follow < 0 {
		return usagef("--dispatch-wait %s: want 0 (follow to the end) or a positive duration", follow)
	}
	if kind == "lambda" && cfg.From != cfg.To {
		return usagef("--dispatch lambda: builds one day (--from D --to D); for %s..%s use --dispatch sfn:<StateMachineArn>, which runs the range in one execution", cfg.From, cfg.To)
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("AWS configuration: %w", err)
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if kind == "lambda" {
		// AWS_ENDPOINT_URL_LAMBDA overrides the endpoint.
		return dispatchDay(ctx, cfg, awslambda.NewFromConfig(awsCfg), name, stdout)
	}
	// AWS_ENDPOINT_URL_SFN overrides the endpoint.
	f := &follower{api: sfn.NewFromConfig(awsCfg), st: cfg.Store, machine: name, out: stderr, poll: 2 * time.Second}
	sum, err := f.follow(ctx, cfg.From, cfg.To, follow)
	if sum != nil {
		printRunSummary(stdout, sum)
	}
	return err
}

// dispatchDay is --dispatch lambda:FUNCTION for one day: the function's
// build stage, invoked and waited for, then the windowed stage and the
// registration here, as a local run ends.
func dispatchDay(ctx context.Context, cfg job.Config, client *awslambda.Client, function string, stdout io.Writer) error {
	payload, _ := json.Marshal(lambda.StageEvent{Stage: lambda.StageBuild, Day: cfg.From.String()})
	out, err := client.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String(function), Payload: payload})
	if err != nil {
		return fmt.Errorf("invoke %s for %s: %w", function, cfg.From, err)
	}
	if out.FunctionError != nil {
		return fmt.Errorf("%s failed to build %s (%s): %s", function, cfg.From, *out.FunctionError, out.Payload)
	}
	var res lambda.WorkerResult
	if err := json.Unmarshal(out.Payload, &res); err != nil {
		return fmt.Errorf("%s answered for %s with something not a build result: %.200s", function, cfg.From, out.Payload)
	}
	fmt.Fprintf(stdout, "%s %s by %s in %.1fs\n", res.Day, res.Status, function, res.Seconds)
	ws, err := job.RunWindowed(ctx, cfg, nil)
	if err != nil {
		return fmt.Errorf("windowed tables: %w", err)
	}
	return job.Register(ctx, cfg, ws)
}

// SFNAPI is the part of the Step Functions client --dispatch sfn: needs
// (*sfn.Client has it).
type SFNAPI interface {
	StartExecution(ctx context.Context, in *sfn.StartExecutionInput, opts ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
	DescribeExecution(ctx context.Context, in *sfn.DescribeExecutionInput, opts ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
}

// follower starts one execution of the nightly state machine and follows
// it: the execution's status from Step Functions, the days' progress from
// what the stages write to the store (the plan record, each day's report).
type follower struct {
	api     SFNAPI
	st      store.Store
	machine string
	out     io.Writer
	poll    time.Duration

	planned             int
	done, failed        map[string]bool
	lastLine            string
	runID, executionARN string
	started             time.Time
	planSeen            bool
}

// run starts an execution for from..to, named by a new run id, and
// follows it until it ends (or for at most follow, if positive; or until
// ctx ends): the execution goes on in AWS either way. It returns the run
// summary the finish stage wrote, and an error if the run did not end
// done.
func (f *follower) follow(ctx context.Context, from, to day.Day, follow time.Duration) (*lambda.RunSummary, error) {
	f.started = time.Now()
	f.runID = ulid.MustNew(ulid.Timestamp(f.started), ulid.DefaultEntropy()).String()
	f.done, f.failed = map[string]bool{}, map[string]bool{}
	input, _ := json.Marshal(lambda.BackfillEvent{From: from.String(), To: to.String()})
	out, err := f.api.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(f.machine), Name: aws.String(f.runID), Input: aws.String(string(input)),
	})
	if err != nil {
		return nil, fmt.Errorf("start an execution of %s: %w", f.machine, err)
	}
	f.executionARN = aws.ToString(out.ExecutionArn)
	fmt.Fprintf(f.out, "run %s: execution %s started for %s..%s\n", f.runID, f.executionARN, from, to)
	fctx := ctx
	if follow > 0 {
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(ctx, follow)
		defer cancel()
	}
	for pause := 250 * time.Millisecond; ; pause = min(pause*2, f.poll) {
		desc, err := f.api.DescribeExecution(fctx, &sfn.DescribeExecutionInput{ExecutionArn: out.ExecutionArn})
		if err == nil {
			f.progress(fctx)
			if desc.Status != sfntypes.ExecutionStatusRunning && desc.Status != sfntypes.ExecutionStatusPendingRedrive {
				return f.end(ctx, desc)
			}
		}
		if werr := wait.Sleep(fctx, pause); werr != nil {
			fmt.Fprintf(f.out, "stopped following run %s; the execution goes on in AWS: follow it in the Step Functions console, "+
				"or stop it with aws stepfunctions stop-execution --execution-arn %s\n", f.runID, f.executionARN)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("--dispatch-wait passed before the execution ended: %w", werr)
		}
		if err != nil {
			fmt.Fprintf(f.out, "describe execution %s: %v (trying again)\n", f.executionARN, err)
		}
	}
}

// progress prints a line when the run's progress changed: the route
// parts, then days planned, done, failed and running.
func (f *follower) progress(ctx context.Context) {
	if !f.planSeen {
		b, err := f.st.Get(ctx, lambda.PlanKey(f.runID))
		if err != nil {
			f.say(fmt.Sprintf("run %s: routing and planning (%s)", f.runID, time.Since(f.started).Round(time.Second)))
			return
		}
		var p lambda.PlanRecord
		if json.Unmarshal(b, &p) != nil {
			return
		}
		f.planSeen, f.planned = true, p.Planned
	}
	objs, err := f.st.List(ctx, lambda.RunsPrefix+f.runID+"/")
	if err != nil {
		return
	}
	for _, o := range objs {
		name := strings.TrimSuffix(strings.TrimPrefix(o.Key, lambda.RunsPrefix+f.runID+"/"), ".json")
		d, err := day.Parse(name)
		if err != nil || f.done[name] || f.failed[name] {
			continue
		}
		b, err := f.st.Get(ctx, lambda.ReportKey(f.runID, d))
		var rep lambda.WorkerResult
		if err != nil || json.Unmarshal(b, &rep) != nil {
			continue
		}
		switch rep.Status {
		case lambda.StatusBuilt, lambda.StatusCurrent:
			f.done[name] = true
		case lambda.StatusFailed:
			f.failed[name] = true
		}
	}
	running := max(f.planned-len(f.done)-len(f.failed), 0)
	f.say(fmt.Sprintf("run %s: %d/%d days done, %d failed, %d running (%s)", f.runID, len(f.done), f.planned, len(f.failed), running,
		time.Since(f.started).Round(time.Second)))
}

// say prints line unless it only differs from the last in its time.
func (f *follower) say(line string) {
	key, _, _ := strings.Cut(line, " (")
	if key == f.lastLine {
		return
	}
	f.lastLine = key
	fmt.Fprintln(f.out, line)
}

// end reads the run summary of an execution that ended.
func (f *follower) end(ctx context.Context, desc *sfn.DescribeExecutionOutput) (*lambda.RunSummary, error) {
	fmt.Fprintf(f.out, "run %s: execution %s\n", f.runID, strings.ToLower(string(desc.Status)))
	if run := runOfOutput(desc.Output); run != "" && run != f.runID {
		// The start stage named the run itself (the execution's name was
		// not a run id of about now: a clock far off).
		f.runID = run
	}
	b, err := f.st.Get(ctx, lambda.SummaryKey(f.runID))
	var sum *lambda.RunSummary
	if err == nil {
		err = json.Unmarshal(b, &sum)
	}
	if err != nil {
		why := aws.ToString(desc.Error)
		if c := aws.ToString(desc.Cause); c != "" {
			why += ": " + c
		}
		if errors.Is(err, store.ErrNotExist) {
			err = errors.New("the run wrote no summary")
		}
		return nil, fmt.Errorf("execution %s %s (%s); %v", f.executionARN, strings.ToLower(string(desc.Status)), why, err)
	}
	switch {
	case sum.Status == lambda.RunDone && desc.Status == sfntypes.ExecutionStatusSucceeded:
		return sum, nil
	case sum.Status == lambda.RunPartial && sum.Failed == 0:
		return sum, fmt.Errorf("the erase stage failed (%s); the days are built, and the pending erasures wait for the next run", sum.EraseError)
	case sum.Status == lambda.RunPartial:
		return sum, fmt.Errorf("%d of %d days failed (see above, and %s in the store); re-run to build them: nothing is doubled or lost", sum.Failed, sum.Planned, lambda.SummaryKey(sum.Run))
	}
	return sum, fmt.Errorf("run %s %s: %s (execution %s)", sum.Run, sum.Status, sum.Error, f.executionARN)
}

// runOfOutput is the run an execution's output names ($.run), if any.
func runOfOutput(out *string) string {
	var v struct {
		Run string `json:"run"`
	}
	if out == nil || json.Unmarshal([]byte(*out), &v) != nil {
		return ""
	}
	return v.Run
}

// printRunSummary prints a run summary as a local run prints its own
// (printSummary): a line per day with its numbers.
func printRunSummary(w io.Writer, s *lambda.RunSummary) {
	fmt.Fprintf(w, "run %s (%s): %s; %d days planned, %d built, %d failed in %.1fs\n\n", s.Run, s.Trigger, s.Status, s.Planned, s.Built, s.Failed, s.Seconds)
	printDayHeader(w)
	for _, d := range s.Days {
		switch {
		case d.Status == lambda.DayUpToDate:
			fmt.Fprintf(w, "%-10s  %s\n", d.Day, d.Why+", skipped (--force rebuilds)")
		case d.Status == lambda.DayFailed:
			fmt.Fprintf(w, "%-10s  failed: %s\n", d.Day, d.Error)
		case d.Worker == nil || d.Worker.Stats == nil:
			fmt.Fprintf(w, "%-10s  %s\n", d.Day, d.Status)
		default:
			q := d.Worker.Stats
			fmt.Fprintf(w, dayRow, d.Day, q.RawRows, q.KeptRows, q.Duplicates, q.InvalidRows, q.MissingEventTime, q.ClockSkewedRows, q.BadObjects,
				q.FilesWritten, store.HumanSize(q.BytesWritten), d.Seconds, d.Why)
		}
	}
	if ws := s.Windowed; ws != nil {
		fmt.Fprintf(w, "\nwindowed tables (as of %s): %d active_users_daily and %d retention_daily partitions published, %d up to date\n",
			ws.AsOf, ws.ActiveDays, ws.Cohorts, ws.UpToDate)
		printFunnels(w, ws.FunnelsError, ws.FunnelsFileBad, ws.FunnelDaysRemade)
	}
	if r := s.Route; r != nil {
		fmt.Fprintf(w, "routed %d raw objects (%s) in %d parts", r.Routed, store.HumanSize(r.Bytes), r.Parts)
		if r.Failed > 0 {
			fmt.Fprintf(w, "; %d parts failed, their objects read by the days that need them", r.Failed)
		}
		fmt.Fprintln(w)
	}
	if s.Error != "" {
		fmt.Fprintf(w, "\nerror: %s\n", s.Error)
	}
	if s.EraseError != "" {
		fmt.Fprintf(w, "\nthe erase stage failed, pending erasures wait for the next run: %s\n", s.EraseError)
	}
	fmt.Fprintf(w, "summary: %s in the store\n", lambda.SummaryKey(s.Run))
}
