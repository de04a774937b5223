package infra

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7/schema"
)

// cfnSchema is goformation's JSON Schema of CloudFormation templates:
// one definition per resource type and property type, with their required
// properties, known properties and value types.
type cfnSchema struct{ defs map[string]interface{} }

func loadSchema(t *testing.T) *cfnSchema {
	t.Helper()
	var s struct {
		Definitions map[string]interface{} `json:"definitions"`
	}
	if err := json.Unmarshal([]byte(schema.CloudformationSchema), &s); err != nil {
		t.Fatalf("goformation schema: %v", err)
	}
	return &cfnSchema{defs: s.Definitions}
}

// isIntrinsic reports whether v is an intrinsic function, which may stand
// for any value; CloudFormation checks its result, not this test.
func isIntrinsic(v interface{}) bool {
	m, ok := v.(map[string]interface{})
	if !ok || len(m) != 1 {
		return false
	}
	for k := range m {
		return k == "Ref" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

// check validates v against schema node s (the subset of JSON Schema the
// CloudFormation schema uses) and returns the problems found.
func (c *cfnSchema) check(s map[string]interface{}, v interface{}, path string) []string {
	if r, ok := s["$ref"].(string); ok {
		def, ok := c.defs[strings.TrimPrefix(r, "#/definitions/")].(map[string]interface{})
		if !ok {
			return []string{path + ": schema has no " + r}
		}
		return c.check(def, v, path)
	}
	if isIntrinsic(v) {
		return nil
	}
	for _, key := range []string{"anyOf", "oneOf"} {
		if alts, ok := s[key].([]interface{}); ok {
			for _, a := range alts {
				if len(c.check(a.(map[string]interface{}), v, path)) == 0 {
					return nil
				}
			}
			return []string{path + ": matches none of the allowed shapes"}
		}
	}
	if typ, ok := s["type"]; ok && !hasType(typ, v) {
		return []string{fmt.Sprintf("%s: %T where the schema wants %v", path, v, typ)}
	}
	if enum, ok := s["enum"].([]interface{}); ok {
		found := false
		for _, e := range enum {
			found = found || fmt.Sprint(e) == fmt.Sprint(v)
		}
		if !found {
			return []string{fmt.Sprintf("%s: %v is not one of %v", path, v, enum)}
		}
	}
	var errs []string
	switch n := v.(type) {
	case map[string]interface{}:
		for _, r := range asSlice(s["required"]) {
			if _, ok := n[r.(string)]; !ok {
				errs = append(errs, fmt.Sprintf("%s: required property %s is missing", path, r))
			}
		}
		known, _ := s["properties"].(map[string]interface{})
		patterns, _ := s["patternProperties"].(map[string]interface{})
		for _, k := range sortedKeys(n) {
			if p, ok := known[k].(map[string]interface{}); ok {
				errs = append(errs, c.check(p, n[k], path+"."+k)...)
				continue
			}
			matched := false
			for pat, p := range patterns {
				if regexp.MustCompile(pat).MatchString(k) {
					matched = true
					errs = append(errs, c.check(p.(map[string]interface{}), n[k], path+"."+k)...)
				}
			}
			if !matched && s["additionalProperties"] == false {
				errs = append(errs, fmt.Sprintf("%s: unknown property %s", path, k))
			}
		}
	case []interface{}:
		if items, ok := s["items"].(map[string]interface{}); ok {
			for i, e := range n {
				errs = append(errs, c.check(items, e, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	}
	return errs
}

func hasType(typ interface{}, v interface{}) bool {
	for _, t := range asSlice(typ) {
		switch t {
		case "object":
			if _, ok := v.(map[string]interface{}); ok {
				return true
			}
		case "array":
			if _, ok := v.([]interface{}); ok {
				return true
			}
		case "string":
			if _, ok := v.(string); ok {
				return true
			}
		case "number", "integer":
			if _, ok := v.(json.Number); ok {
				return true
			}
		case "boolean":
			if _, ok := v.(bool); ok {
				return true
			}
		}
	}
	return false
}

func asSlice(v interface{}) []interface{} {
	switch x := v.(type) {
	case []interface{}:
		return x
	case nil:
		return nil
	default:
		return []interface{}{x}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestResourcesMatchTheCloudFormationSchema checks every resource of the
// packaged template against goformation's CloudFormation schema: its type
// exists, its required properties are present, it has no unknown
// properties, and values have the right JSON types, all the way down.
func TestResourcesMatchTheCloudFormationSchema(t *testing.T) {
	c := loadSchema(t)
	tmpl := packaged(t, committedTree(t))
	resources := tmpl["Resources"].(map[string]interface{})
	for _, id := range sortedKeys(resources) {
		r := resources[id].(map[string]interface{})
		typ, _ := r["Type"].(string)
		def, ok := c.defs[typ].(map[string]interface{})
		if !ok {
			t.Errorf("%s: unknown resource type %q", id, typ)
			continue
		}
		for _, e := range c.check(def, r, id) {
			t.Error(e)
		}
	}
}

// TestTheSchemaCheckCatchesMistakes makes sure the check above can fail.
func TestTheSchemaCheckCatchesMistakes(t *testing.T) {
	c := loadSchema(t)
	def := c.defs["AWS::Lambda::Function"].(map[string]interface{})
	for name, r := range map[string]map[string]interface{}{
		"missing Role":     {"Type": "AWS::Lambda::Function", "Properties": map[string]interface{}{"Code": map[string]interface{}{}}},
		"unknown property": {"Type": "AWS::Lambda::Function", "Properties": map[string]interface{}{"Code": map[string]interface{}{}, "Role": "r", "Memory": json.Number("1")}},
		"wrong type":       {"Type": "AWS::Lambda::Function", "Properties": map[string]interface{}{"Code": map[string]interface{}{}, "Role": "r", "MemorySize": "big"}},
	} {
		if len(c.check(def, r, name)) == 0 {
			t.Errorf("%s: not caught", name)
		}
	}
}

var subVar = regexp.MustCompile(`\$\{([^!}][^}]*)\}`)

// TestReferencesResolve checks that every Ref, Fn::GetAtt, Fn::Sub
// variable and condition names something in the template, and that every
// parameter is used.
func TestReferencesResolve(t *testing.T) {
	tmpl := committedTree(t)
	params := tmpl["Parameters"].(map[string]interface{})
	resources := tmpl["Resources"].(map[string]interface{})
	conditions := tmpl["Conditions"].(map[string]interface{})
	used := map[string]bool{}
	name := func(where, n string) {
		if strings.HasPrefix(n, "AWS::") {
			return
		}
		if _, ok := params[n]; ok {
			used[n] = true
			return
		}
		if _, ok := resources[n]; !ok {
			t.Errorf("%s: %s is neither a parameter nor a resource", where, n)
		}
	}
	var walk func(v interface{}, where string)
	walk = func(v interface{}, where string) {
		switch n := v.(type) {
		case map[string]interface{}:
			for k, x := range n {
				switch k {
				case "Ref":
					name(where, x.(string))
				case "Fn::GetAtt":
					id := x.([]interface{})[0].(string)
					if _, ok := resources[id]; !ok {
						t.Errorf("%s: Fn::GetAtt of unknown resource %s", where, id)
					}
				case "Fn::Sub":
					for _, m := range subVar.FindAllStringSubmatch(x.(string), -1) {
						n, _, _ := strings.Cut(m[1], ".")
						name(where, n)
					}
				case "Fn::If":
					if _, ok := conditions[x.([]interface{})[0].(string)]; !ok {
						t.Errorf("%s: Fn::If on unknown condition %v", where, x.([]interface{})[0])
					}
				case "Condition":
					if s, ok := x.(string); ok {
						if _, ok := conditions[s]; !ok {
							t.Errorf("%s: unknown condition %s", where, s)
						}
					}
				}
				walk(x, where+"."+k)
			}
		case []interface{}:
			for _, x := range n {
				walk(x, where)
			}
		}
	}
	for _, section := range []string{"Resources", "Outputs", "Conditions"} {
		walk(tmpl[section], section)
	}
	for p := range params {
		if !used[p] {
			t.Errorf("parameter %s is not used", p)
		}
	}
}
