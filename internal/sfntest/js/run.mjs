// Runs one execution of a state machine with aws-local-stepfunctions, each
// Task invoking its Lambda function through the AWS SDK (the endpoint is
// AWS_ENDPOINT_URL_LAMBDA: the Runtime Interface Emulator in tests).
//
//   node run.mjs DEFINITION_FILE INPUT_JSON EXECUTION_NAME
//
// Prints one JSON line per execution event ({"event": ...}), then one
// {"output": ...} or {"error": ..., "cause": ...} line. Exits 0 either way:
// the test reads the outcome from the last line.
import { readFileSync } from 'node:fs';
import { StateMachine } from 'aws-local-stepfunctions';

// Node 20 lacks Promise.withResolvers (Node 22 has it), which the library
// calls for every Task's timeout.
if (!Promise.withResolvers) {
  Promise.withResolvers = () => {
    let resolve, reject;
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  };
}

const [defFile, input, name] = process.argv.slice(2);
const definition = JSON.parse(readFileSync(defFile, 'utf8'));
const machine = new StateMachine(definition, {
  awsConfig: {
    region: process.env.AWS_REGION || 'us-east-1',
    credentials: { accessKeys: { accessKeyId: 'AKIDTEST', secretAccessKey: 'SECRETTEST' } },
  },
});
// Retries wait no time here: the tests check that a retry happens, not how
// long Step Functions would pause before it.
const noPause = {};
const collect = (states) => {
  for (const [n, s] of Object.entries(states)) {
    if (s.Retry) noPause[n] = 0;
    if (s.ItemProcessor) collect(s.ItemProcessor.States);
  }
};
collect(definition.States);
const execution = machine.run(JSON.parse(input), {
  context: { Execution: { Name: name, Id: 'arn:aws:states:us-east-1:123456789012:execution:nightly:' + name, Input: JSON.parse(input) } },
  overrides: { retryIntervalOverrides: noPause },
});
const events = (async () => {
  for await (const ev of execution.eventLogs) console.log(JSON.stringify({ event: ev }));
})();
try {
  const output = await execution.result;
  await events;
  console.log(JSON.stringify({ output }));
} catch (err) {
  await events.catch(() => {});
  console.log(JSON.stringify({ error: err.name || 'Error', cause: err.message || String(err) }));
}
