package tabular

import (
	"embed"

	"github.com/shaobing/shaobing/internal/locale"
)

//go:embed messages.json
var messageFiles embed.FS

// Messages translate the file-level import and export error codes.
var Messages = locale.Source{FS: messageFiles, Name: "messages.json"}
