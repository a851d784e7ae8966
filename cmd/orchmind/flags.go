package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Small helpers so that adding a flag to a verb is one line.

// repeatable adds a flag that may be given several times; each value is
// kept as given (no splitting on commas).
func repeatable(c *cobra.Command, name, usage string) *[]string {
	return c.Flags().StringArray(name, nil, usage)
}

// optInt adds an int flag that sets *dst only when given.
func optInt(c *cobra.Command, dst **int, name, usage string) {
	c.Flags().Var(&optValue[int]{dst: dst, typ: "int", parse: func(s string) (int, error) {
		v, err := strconv.Atoi(s)
		if err != nil {
			return 0, fmt.Errorf("not a whole number: %q", s)
		}
		return v, nil
	}}, name, usage+" (default: chosen from the data)")
}

// optFloat adds a float flag that sets *dst only when given.
func optFloat(c *cobra.Command, dst **float64, name, usage string) {
	c.Flags().Var(&optValue[float64]{dst: dst, typ: "float", parse: func(s string) (float64, error) {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, fmt.Errorf("not a number: %q", s)
		}
		return v, nil
	}}, name, usage+" (default: chosen from the data)")
}

// optBool adds a bool flag that sets *dst only when given; --name alone
// means true, --name=false false.
func optBool(c *cobra.Command, dst **bool, name, usage string) {
	f := c.Flags().VarPF(&optValue[bool]{dst: dst, typ: "bool", parse: func(s string) (bool, error) {
		v, err := strconv.ParseBool(s)
		if err != nil {
			return false, fmt.Errorf("not true or false: %q", s)
		}
		return v, nil
	}}, name, "", usage)
	f.NoOptDefVal = "true"
}

// optValue is a pflag.Value that leaves *dst nil until the flag is set.
type optValue[T any] struct {
	dst   **T
	typ   string
	parse func(string) (T, error)
}

func (o *optValue[T]) Set(s string) error {
	v, err := o.parse(s)
	if err != nil {
		return err
	}
	*o.dst = &v
	return nil
}

func (o *optValue[T]) String() string {
	if o.dst == nil || *o.dst == nil {
		return ""
	}
	return fmt.Sprint(**o.dst)
}

func (o *optValue[T]) Type() string { return o.typ }

// IsBoolFlag lets the flag stand alone for bools (pflag reads NoOptDefVal;
// this keeps the value honest for other readers).
func (o *optValue[T]) IsBoolFlag() bool { return o.typ == "bool" }

var _ pflag.Value = (*optValue[int])(nil)

// completeWords makes the shell complete flag name with words.
func completeWords(c *cobra.Command, name string, words ...string) {
	_ = c.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(words, cobra.ShellCompDirectiveNoFileComp))
}

// completeFiles makes the shell complete flag name with files of these
// extensions (and folders).
func completeFiles(c *cobra.Command, name string, exts ...string) {
	_ = c.MarkFlagFilename(name, exts...)
}

// completeDirs makes the shell complete flag name with folders.
func completeDirs(c *cobra.Command, name string) {
	_ = c.MarkFlagDirname(name)
}
