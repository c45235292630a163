/*
 * web: the live page at GET / of `tickcore serve`. The files of server/web/ (index.html, app.js,
 * app.css: plain DOM and canvas, no library) are turned into C arrays at build time (the
 * Makefile runs `xxd -i` into $(BUILD)/gen/web_assets.h), so the binary carries them and nothing
 * is installed beside it. The page reads only the JSON endpoints, once a second, and sends the
 * bearer token the user gives it (#token=... in the URL, or asked once); the files themselves are
 * public (they hold no data).
 *
 * Ownership: the arrays are static constants; web_serve copies one into the route's response
 * buffer (preallocated by server/http), so serving the page allocates nothing. Threads: any.
 */
#ifndef TICKCORE_SERVER_WEB_H
#define TICKCORE_SERVER_WEB_H

#include "base/jbuf.h"
#include "server/http.h"

#include <stddef.h>

typedef struct web_file {
    const char *path;         /* "/", "/app.js", "/app.css" */
    const char *content_type; /* with its charset */
    const unsigned char *data;
    size_t len;
} web_file_t;

/* The embedded files, in a fixed order; *n gets their count. */
const web_file_t *web_files(size_t *n);

/* An http_handler_fn: ctx is one of web_files(); the file's bytes into out. 200. */
int web_serve(void *ctx, const http_request_t *req, jbuf_t *out);

#endif
