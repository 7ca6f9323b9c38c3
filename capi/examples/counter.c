/* A C program that uses nothing but atomik_capi.h (link with -latomik_capi, or
 * `pkg-config --cflags --libs atomik-capi`): creates bank NAME (ADD, 64 slots) or opens it
 * when it exists, ACCUMs DELTA into SLOT COUNT times, prints the slot's state in hex, and
 * checks the library's errors. Usage: counter NAME SLOT DELTA COUNT. Built and run by
 * capi/tests/c_program.rs; the bank is on whatever backend libatomik picks (the userspace
 * default, or /dev/atomik when its module is loaded). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomik_capi.h"

static int fail(const char *what, int rc)
{
	fprintf(stderr, "%s: %s (%d: %s)\n", what, atomik_last_error(), rc, strerror(-rc));
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s NAME SLOT DELTA COUNT\n", argv[0]);
		return 2;
	}
	uint64_t slot = strtoull(argv[2], NULL, 0), d = strtoull(argv[3], NULL, 0);
	uint64_t count = strtoull(argv[4], NULL, 0);
	atomik_bank *bank = NULL;
	int rc = atomik_bank_create(argv[1], 64, ATOMIK_CAPI_OP_ADD, 0600, 0, &bank);
	if (rc == -EEXIST)
		rc = atomik_bank_open(argv[1], ATOMIK_CAPI_READ_WRITE, &bank);
	if (rc != 0)
		return fail("create or open", rc);
	for (uint64_t n = 0; n < count; n++)
		if ((rc = atomik_accum(bank, slot, d)) != 0)
			return fail("accum", rc);
	uint64_t v = 0;
	if ((rc = atomik_read(bank, slot, &v)) != 0)
		return fail("read", rc);
	printf("0x%016" PRIx64 " %s\n", v, atomik_bank_backend(bank));
	/* Errors are negative errnos with a message, and change nothing. */
	if (atomik_accum(bank, atomik_bank_slots(bank), 1) != -ERANGE || atomik_last_error()[0] == 0)
		return fail("slot out of range not refused with -ERANGE", -EPROTO);
	if (atomik_read(bank, slot, NULL) != -EINVAL)
		return fail("NULL result not refused with -EINVAL", -EPROTO);
	atomik_bank *none = NULL;
	if (atomik_bank_open("capi-no-such-bank", ATOMIK_CAPI_READ, &none) != -ENOENT || none != NULL)
		return fail("missing bank not refused with -ENOENT", -EPROTO);
	if (atomik_bank_create(".bad", 1, ATOMIK_CAPI_OP_XOR, 0600, 0, &none) != -EINVAL)
		return fail("bad name not refused with -EINVAL", -EPROTO);
	atomik_bank_close(bank);
	return 0;
}
