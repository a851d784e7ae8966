// Package fuzzcheck holds the checks fuzz targets share: that a parser
// allocates memory in proportion to its input (a header must not make it
// reserve gigabytes) and that its errors are one line.
package fuzzcheck
