# `make help`: every target whose rule line carries a `## text` comment, in Makefile order,
# with $(VAR) and ${VAR} in the text replaced by the values make passes in the environment,
# the texts in one column after the longest target name.
# Usage: env VAR=value... awk -f hack/make-help.awk Makefile...
/^[A-Za-z0-9][A-Za-z0-9_.-]*:.*## / {
  target = substr($0, 1, index($0, ":") - 1)
  text = substr($0, index($0, "## ") + 3)
  out = ""
  while (match(text, /\$[({][A-Za-z_][A-Za-z0-9_]*[)}]/)) {
    name = substr(text, RSTART + 2, RLENGTH - 3)
    value = (name in ENVIRON) ? ENVIRON[name] : substr(text, RSTART, RLENGTH)
    out = out substr(text, 1, RSTART - 1) value
    text = substr(text, RSTART + RLENGTH)
  }
  n++
  targets[n] = target
  texts[n] = out text
  if (length(target) > width) width = length(target)
}
END {
  format = "  %-" width "s  %s\n"  # POSIX awk has no `*` width
  for (i = 1; i <= n; i++) printf format, targets[i], texts[i]
}
