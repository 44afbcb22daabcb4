package aggregate

import (
	"errors"
	"testing"
)

func TestShapeSelectsAndRenames(t *testing.T) {
	s := NewShape([]string{"id", "name", "n"}, [][2]string{{"name", "full_name"}})
	for in, want := range map[string]string{
		` {"id":1,"name":"a","secret":"x","nested":{"k":1}} `: `{"id":1,"full_name":"a"}`,
		`[{"id":1,"secret":2},3,{"name":"b"}]`:                `[{"id":1},3,{"full_name":"b"}]`,
		`"just a string"`:                                     `"just a string"`,
	} {
		got, err := s.Apply([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("Apply(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := s.Apply([]byte(`{"id":`)); !errors.Is(err, ErrNotJSON) {
		t.Errorf("broken JSON: %v", err)
	}
	var none *Shape
	if got, err := none.Apply([]byte(" [1, 2] \n")); err != nil || string(got) != "[1, 2]" {
		t.Errorf("nil shape: %s %v", got, err)
	}
	if _, err := none.Apply([]byte("<html>")); !errors.Is(err, ErrNotJSON) {
		t.Errorf("html: %v", err)
	}
}

func TestMerges(t *testing.T) {
	parts := []Part{{"a", []byte(`{"x":1,"y":{"z":[1]}}`)}, {"b", []byte(`{"y":2,"w":"q"}`)}}
	if got := string(Named(parts)); got != `{"a":{"x":1,"y":{"z":[1]}},"b":{"y":2,"w":"q"}}` {
		t.Errorf("Named = %s", got)
	}
	got, err := Objects(parts)
	if err != nil || string(got) != `{"x":1,"y":2,"w":"q"}` {
		t.Errorf("Objects = %s, %v", got, err)
	}
	if _, err := Objects([]Part{{"a", []byte(`[1]`)}}); !errors.Is(err, ErrNotObject) {
		t.Errorf("array: %v", err)
	}
	if got := string(Named(nil)); got != `{}` {
		t.Errorf("Named(nil) = %s", got)
	}
}
