package regions

import (
	"embed"

	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/web"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed messages.json
var messageFiles embed.FS

// Templates are the institution and region pages.
var Templates = web.Templates{FS: templateFiles, Pattern: "templates/*.html"}

// Messages are the module's translations.
var Messages = locale.Source{FS: messageFiles, Name: "messages.json"}
