/*
 * test_fault: the I/O fault seam (base/fault) on its own and under fdio_write_all: the nth call
 * of the chosen sites fails, once or from then on; other sites pass and are counted; EINTR and
 * short writes are absorbed by fdio_write_all (the file holds every byte, checked against what
 * was written), EIO and ENOSPC come back as -errno; TICKCORE_FAULT is parsed or refused with the
 * expected syntax named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "base/fault.h"
#include "base/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int tmpfile_fd(char *path, size_t len)
{
    const char *d = getenv("TMPDIR");
    snprintf(path, len, "%s/test_fault.XXXXXX", d && *d ? d : "/tmp");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    return fd;
}

static int teardown(void **state)
{
    (void)state;
    fault_disarm();
    unsetenv("TICKCORE_FAULT");
    return 0;
}

static void test_fault_off_passes_everything(void **state)
{
    (void)state;
    fault_disarm();
    for (int s = 0; s < FAULT_NSITES; s++)
        assert_int_equal(fault_check((fault_site_t)s), FAULT_NONE);
    assert_int_equal(fault_cqe(FAULT_JOURNAL_WRITE, 4096), 4096);
}

static void test_fault_nth_call_of_its_sites_only(void **state)
{
    (void)state;
    unsigned mask = 1u << FAULT_JOURNAL_WRITE | 1u << FAULT_JOURNAL_FSYNC;
    assert_int_equal(fault_arm(mask, 3, FAULT_EIO, false), 0);
    assert_int_equal(fault_check(FAULT_JOURNAL_WRITE), FAULT_NONE); /* 1 */
    assert_int_equal(fault_check(FAULT_HTTP_ACCEPT), FAULT_NONE);   /* not counted */
    assert_int_equal(fault_check(FAULT_JOURNAL_FSYNC), FAULT_NONE); /* 2 */
    assert_int_equal(fault_cqe(FAULT_JOURNAL_FSYNC, 0), -EIO);      /* 3 */
    assert_int_equal(fault_cqe(FAULT_JOURNAL_WRITE, 100), 100);     /* once only */
    fault_stats_t st;
    fault_stats(&st);
    assert_int_equal(st.calls[FAULT_JOURNAL_WRITE], 2);
    assert_int_equal(st.calls[FAULT_JOURNAL_FSYNC], 2);
    assert_int_equal(st.calls[FAULT_HTTP_ACCEPT], 1);
    assert_int_equal(st.injected, 1);
    assert_int_equal(st.first_site, FAULT_JOURNAL_FSYNC);
    char d[512];
    fault_describe(d, sizeof d);
    assert_non_null(strstr(d, "journal_write=2 journal_fsync=2"));
    assert_non_null(strstr(d, " http_accept=1 tcp_recv=0 tcp_send=0; armed eio at call 3,"));
    assert_non_null(strstr(d, "injected 1 (first at journal_fsync)"));
}

static void test_fault_persistent_fails_every_later_call(void **state)
{
    (void)state;
    assert_int_equal(fault_arm(1u << FAULT_CRC_WRITE, 2, FAULT_ENOSPC, true), 0);
    assert_int_equal(fault_cqe(FAULT_CRC_WRITE, 8), 8);
    for (int i = 0; i < 5; i++)
        assert_int_equal(fault_cqe(FAULT_CRC_WRITE, 8), -ENOSPC);
    assert_int_equal(fault_cqe(FAULT_JOURNAL_WRITE, 8), 8); /* another site */
    /* persistent is for errors only; EINTR and short writes must be recovered from */
    assert_int_equal(fault_arm(FAULT_ALL_SITES, 1, FAULT_EINTR, true), -EINVAL);
    assert_int_equal(fault_arm(FAULT_ALL_SITES, 0, FAULT_EIO, false), -EINVAL);
    assert_int_equal(fault_arm(0, 1, FAULT_EIO, false), -EINVAL);
}

static void test_fault_short_cqe_halves_and_keeps_zero(void **state)
{
    (void)state;
    assert_int_equal(fault_arm(FAULT_ALL_SITES, 1, FAULT_SHORT, false), 0);
    assert_int_equal(fault_cqe(FAULT_JOURNAL_WRITE, 4096), 2048);
    assert_int_equal(fault_arm(FAULT_ALL_SITES, 1, FAULT_SHORT, false), 0);
    assert_int_equal(fault_cqe(FAULT_JOURNAL_FSYNC, 0), 0);
}

/* fdio_write_all under every kind at each of its calls: EINTR and short writes leave the file
 * whole; EIO and ENOSPC are returned. The oracle is the buffer written. */
static void test_fault_fdio_write_all_completes_or_fails(void **state)
{
    (void)state;
    static char buf[10000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (char)('a' + i % 26);
    static const fault_kind_t kinds[] = {FAULT_EINTR, FAULT_SHORT, FAULT_EIO, FAULT_ENOSPC};
    for (size_t k = 0; k < 4; k++)
        for (uint64_t nth = 1; nth <= 3; nth++) {
            char path[256];
            int fd = tmpfile_fd(path, sizeof path);
            assert_int_equal(fault_arm(1u << FAULT_EXPORT_WRITE, nth, kinds[k], false), 0);
            uint64_t calls = 0;
            int rc = 0;
            for (int part = 0; part < 3 && rc == 0; part++) /* 3 calls, so nth is reached */
                rc = fdio_write_all(fd, buf + part * 3000, 3000, &calls);
            fault_disarm();
            if (kinds[k] == FAULT_EINTR || kinds[k] == FAULT_SHORT) {
                assert_int_equal(rc, 0);
                static char back[10000];
                assert_int_equal(pread(fd, back, sizeof back, 0), 9000);
                assert_memory_equal(back, buf, 9000);
            } else {
                assert_int_equal(rc, kinds[k] == FAULT_EIO ? -EIO : -ENOSPC);
                assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)(3000 * (nth - 1)));
            }
            close(fd);
            unlink(path);
        }
}

static void test_fault_env_parsed_or_refused(void **state)
{
    (void)state;
    char err[300];
    unsetenv("TICKCORE_FAULT");
    fault_disarm();
    assert_int_equal(fault_from_env(err, sizeof err), 0);
    assert_false(atomic_load(&fault_armed_flag));
    setenv("TICKCORE_FAULT", "count", 1);
    assert_int_equal(fault_from_env(err, sizeof err), 0);
    assert_int_equal(fault_check(FAULT_GAPS_WRITE), FAULT_NONE);
    fault_stats_t st;
    fault_stats(&st);
    assert_int_equal(st.calls[FAULT_GAPS_WRITE], 1);
    setenv("TICKCORE_FAULT", "enospc@2/journal_write+crc_write!", 1);
    assert_int_equal(fault_from_env(err, sizeof err), 0);
    assert_int_equal(fault_check(FAULT_JOURNAL_FSYNC), FAULT_NONE);
    assert_int_equal(fault_check(FAULT_CRC_WRITE), FAULT_NONE);
    assert_int_equal(fault_check(FAULT_JOURNAL_WRITE), FAULT_ENOSPC);
    assert_int_equal(fault_check(FAULT_CRC_WRITE), FAULT_ENOSPC);
    setenv("TICKCORE_FAULT", "econnreset@2/tcp_recv+tcp_send", 1);
    assert_int_equal(fault_from_env(err, sizeof err), 0);
    assert_int_equal(fault_check(FAULT_TCP_SEND), FAULT_NONE);
    assert_int_equal(fault_check(FAULT_TCP_ACCEPT), FAULT_NONE); /* not its sites */
    assert_int_equal(fault_check(FAULT_TCP_RECV), FAULT_ECONNRESET);
    assert_int_equal(fault_errno(FAULT_ECONNRESET), -ECONNRESET);
    assert_string_equal(fault_kind_name(FAULT_ECONNRESET), "econnreset");
    assert_string_equal(fault_site_name(FAULT_TCP_SEND), "tcp_send");
    setenv("TICKCORE_FAULT", "short@7", 1);
    assert_int_equal(fault_from_env(err, sizeof err), 0);
    fault_stats(&st);
    assert_int_equal(st.kind, FAULT_SHORT);
    assert_int_equal(st.nth, 7);
    static const char *const bad[] = {"eio",
                                      "eio@0",
                                      "eio@x",
                                      "boom@3",
                                      "eio@3/disk",
                                      "eintr@3!",
                                      "eio@3/journal_write+",
                                      "eio@-1",
                                      "econnreset@1!",
                                      "econnreset@2/tcp_peer"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("TICKCORE_FAULT", bad[i], 1);
        err[0] = '\0';
        assert_int_equal(fault_from_env(err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, bad[i]));
        assert_non_null(strstr(err, "KIND@N"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_fault_off_passes_everything, teardown),
        cmocka_unit_test_teardown(test_fault_nth_call_of_its_sites_only, teardown),
        cmocka_unit_test_teardown(test_fault_persistent_fails_every_later_call, teardown),
        cmocka_unit_test_teardown(test_fault_short_cqe_halves_and_keeps_zero, teardown),
        cmocka_unit_test_teardown(test_fault_fdio_write_all_completes_or_fails, teardown),
        cmocka_unit_test_teardown(test_fault_env_parsed_or_refused, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
