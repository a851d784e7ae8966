package api

import _ "embed"

// OpenAPI is the OpenAPI 3.1 description of every route (openapi.yaml),
// served at GET /api/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
