package main

import (
	"reflect"
	"strings"

	"github.com/errpd/errpd/config"
)

// reloadable are the top-level sections SIGHUP swaps in; every other key
// takes effect on restart only.
var reloadable = map[string]bool{"templates": true, "mail": true, "brands": true}

// restartKeys names, by their TOML keys, the settings that differ between
// the config the daemon started with and the one read on SIGHUP and that
// take effect only on restart. Only names: values, secrets among them,
// never reach the log.
func restartKeys(started, now config.Config) []string {
	var keys []string
	t := reflect.TypeOf(started)
	a, b := reflect.ValueOf(started), reflect.ValueOf(now)
	for i := range t.NumField() {
		name := tomlName(t.Field(i))
		if name == "" || reloadable[name] || !t.Field(i).IsExported() {
			continue
		}
		keys = append(keys, changedKeys(name, a.Field(i), b.Field(i))...)
	}
	return keys
}

// changedKeys walks a section down to its keys; a key whose value is a map
// or a list is compared whole.
func changedKeys(prefix string, a, b reflect.Value) []string {
	if a.Kind() != reflect.Struct {
		if reflect.DeepEqual(a.Interface(), b.Interface()) {
			return nil
		}
		return []string{prefix}
	}
	var keys []string
	for i := range a.NumField() {
		f := a.Type().Field(i)
		name := tomlName(f)
		if name == "" || !f.IsExported() {
			continue
		}
		keys = append(keys, changedKeys(prefix+"."+name, a.Field(i), b.Field(i))...)
	}
	return keys
}

func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "-" {
		return ""
	}
	return name
}
