package main

import (
	"fmt"
	"strings"

	"orchmind/engine/tensor"
)

func main() { fmt.Println(strings.Join(tensor.ISAs(), " ")) }
