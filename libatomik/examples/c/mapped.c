/* A C program that uses nothing but atomik.h: maps a userspace-default bank file, ACCUMs
 * through the mapping and READs it back. Usage: mapped BANK_FILE SLOT DELTA COUNT
 * (ACCUMs DELTA into SLOT COUNT times, then prints the slot's state in hex). Built and run by
 * libatomik/tests/c_example.rs against a bank libatomik made. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomik.h"

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s BANK_FILE SLOT DELTA COUNT\n", argv[0]);
		return 2;
	}
	uint64_t slot = strtoull(argv[2], NULL, 0), d = strtoull(argv[3], NULL, 0);
	uint64_t count = strtoull(argv[4], NULL, 0);
	int fd = open(argv[1], O_RDWR | O_NOFOLLOW);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0 || (uint64_t)st.st_size < ATOMIK_BANK_HEADER_SIZE) {
		perror(argv[1]);
		return 1;
	}
	void *base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	const struct atomik_bank_header *h = base;
	/* Trust nothing before the header checks out. */
	if (h->magic != ATOMIK_BANK_MAGIC || h->abi_version != ATOMIK_ABI_VERSION ||
	    h->total_size > (uint64_t)st.st_size || slot >= h->slot_count) {
		fprintf(stderr, "%s: not a usable ABI %u bank, or slot out of range\n", argv[1], ATOMIK_ABI_VERSION);
		return 1;
	}
	for (uint64_t n = 0; n < count; n++)
		atomik_mapped_accum(base, slot, d);
	printf("0x%016" PRIx64 "\n", atomik_mapped_read(base, slot));
	return 0;
}
