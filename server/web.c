/*
 * web: see web.h. web_assets.h is generated (one static array per file, from xxd -i); this file
 * names them and serves them.
 */
#include "server/web.h"

#include "web_assets.h"

static const web_file_t FILES[] = {
    {"/", "text/html; charset=utf-8", WEB_INDEX_HTML, sizeof WEB_INDEX_HTML},
    {"/app.js", "text/javascript; charset=utf-8", WEB_APP_JS, sizeof WEB_APP_JS},
    {"/app.css", "text/css; charset=utf-8", WEB_APP_CSS, sizeof WEB_APP_CSS},
};

const web_file_t *web_files(size_t *n)
{
    *n = sizeof FILES / sizeof FILES[0];
    return FILES;
}

int web_serve(void *ctx, const http_request_t *req, jbuf_t *out)
{
    (void)req;
    const web_file_t *f = ctx;
    jbuf_putn(out, (const char *)f->data, f->len);
    return 200;
}
