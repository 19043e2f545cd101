package people

import (
	"embed"

	"github.com/shaobing/shaobing/internal/openapi"
)

//go:embed openapi.json
var openapiFiles embed.FS

// OpenAPI describes the people API.
var OpenAPI = openapi.Fragment{FS: openapiFiles, Name: "openapi.json"}
