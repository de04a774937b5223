package gcpolicy

import "testing"

func TestChoose(t *testing.T) {
	for _, c := range []struct {
		name string
		env  map[string]string
		want Policy
	}{
		{"a CLI run", nil, Policy{Percent, CLILimit}},
		{"a Lambda function of 3008 MB", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3008"}, Policy{Percent, 3008 << 20 / 10 * 9}},
		{"a Lambda function of 10240 MB", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "10240"}, Policy{Percent, 10240 << 20 / 10 * 9}},
		{"an explicit GOMEMLIMIT wins", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "10240", "GOMEMLIMIT": "8GiB"}, Policy{Percent, 0}},
		{"an explicit GOGC wins", map[string]string{"GOGC": "50"}, Policy{0, CLILimit}},
		{"a memory size that is not a number", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "lots"}, Policy{Percent, 0}},
		{"a negative memory size", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "-5"}, Policy{Percent, 0}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Choose(func(k string) string { return c.env[k] }); got != c.want {
				t.Errorf("Choose = %+v, want %+v", got, c.want)
			}
		})
	}
}
