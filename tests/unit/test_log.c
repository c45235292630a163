/*
 * test_log: the server log's lines stay whole when several threads write at once (issue 15: the
 * report interleaved with log lines). 8 threads x 2,000 lines of different lengths (up to past
 * the 1 KiB line limit) go to a file (O_APPEND) and to a pipe (standard error's case); each line
 * read back has the timestamp at its start, one thread's tag, its sequence number and exactly the
 * padding that number calls for, and every line of every thread is there once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THREADS 8
#define LINES   2000
#define TS_LEN  25 /* "2026-11-26T08:00:00.123Z " */

static char g_pad[1200];

static size_t pad_len(int t, int i)
{
    return (size_t)((t * 131 + i * 37) % 1100); /* some lines past the 1 KiB limit */
}

static void *writer(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < LINES; i++)
        log_msg("serve: t%d n%d %.*s|", t, i, (int)pad_len(t, i), g_pad);
    return NULL;
}

static void run_writers(void)
{
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, writer, (void *)(intptr_t)t), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
}

/* Check the text: every line whole, every (thread, n) once. */
static void check_lines(char *text, size_t len)
{
    static unsigned char seen[THREADS][LINES];
    memset(seen, 0, sizeof seen);
    size_t lines = 0;
    char *p = text, *end = text + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(nl);
        *nl = '\0';
        size_t ll = (size_t)(nl - p);
        if (ll < TS_LEN || p[4] != '-' || p[10] != 'T' || p[TS_LEN - 2] != 'Z')
            fail_msg("line %zu does not start with a timestamp: %.80s", lines, p);
        int t = -1, i = -1, off = 0;
        if (sscanf(p + TS_LEN, "serve: t%d n%d %n", &t, &i, &off) != 2 || t < 0 || t >= THREADS ||
            i < 0 || i >= LINES)
            fail_msg("line %zu: not one of ours: %.80s", lines, p);
        const char *pad = p + TS_LEN + off;
        size_t want = pad_len(t, i), have = strspn(pad, "x");
        if (pad[have] == '|') { /* whole: exactly its padding */
            assert_int_equal(have, want);
            assert_int_equal(pad[have + 1], '\0');
        } else { /* cut at the line limit: only padding, and it is that long one */
            assert_int_equal(pad[have], '\0');
            assert_true(have <= want);
            assert_true(ll >= 1000);
        }
        assert_int_equal(seen[t][i], 0);
        seen[t][i] = 1;
        lines++;
        p = nl + 1;
    }
    assert_int_equal(lines, THREADS * LINES);
}

static void test_log_lines_whole_in_a_file(void **state)
{
    (void)state;
    char path[] = "/tmp/tickcore-test-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(log_open(path), 0);
    run_writers();
    log_close();
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[THREADS * LINES * 1100];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    unlink(path);
    check_lines(buf, n);
}

static char g_pipe_buf[THREADS * LINES * 1100];
static size_t g_pipe_len;

static void *reader(void *arg)
{
    int fd = (int)(intptr_t)arg;
    for (;;) {
        ssize_t k = read(fd, g_pipe_buf + g_pipe_len, sizeof g_pipe_buf - 1 - g_pipe_len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return NULL;
        g_pipe_len += (size_t)k;
    }
}

/* Standard error is a pipe (a supervisor, `2>&1 | ...`): a write of up to PIPE_BUF bytes is
 * atomic there; a line is at most 1 KiB. */
static void test_log_lines_whole_in_a_pipe(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_int_equal(dup2(p[1], 2), 2);
    close(p[1]);
    g_pipe_len = 0;
    pthread_t rd;
    assert_int_equal(pthread_create(&rd, NULL, reader, (void *)(intptr_t)p[0]), 0);
    assert_int_equal(log_open(NULL), 0);
    run_writers();
    dup2(saved, 2); /* the pipe's last writer gone: the reader sees its end */
    close(saved);
    pthread_join(rd, NULL);
    close(p[0]);
    check_lines(g_pipe_buf, g_pipe_len);
}

int main(void)
{
    memset(g_pad, 'x', sizeof g_pad);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_lines_whole_in_a_file),
        cmocka_unit_test(test_log_lines_whole_in_a_pipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
