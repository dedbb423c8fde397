#!/bin/sh
# The one list of front-end files the pages load: copies them from node_modules/ into
# static/vendor/ (replacing it). ./labdeck runs it for a checkout, deploy/portal.Dockerfile for
# the image; run it from the folder that holds node_modules/.
set -eu

# vendor_copy FOLDER FILE...: FILEs (paths under node_modules/) into static/vendor/FOLDER/
vendor_copy() {
  folder="static/vendor/$1"
  shift
  mkdir -p "$folder"
  for file in "$@"; do
    cp "node_modules/$file" "$folder/"
  done
}

rm -rf static/vendor
vendor_copy htmx htmx.org/dist/htmx.min.js
vendor_copy xterm @xterm/xterm/lib/xterm.js @xterm/xterm/css/xterm.css
vendor_copy xterm-addon-fit @xterm/addon-fit/lib/addon-fit.js
