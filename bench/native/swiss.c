// Native comparison: two C classifiers over the benchmark's frames, served one timed pass at a time so the driver can
// interleave them with the Wasm and JavaScript variants (one command per line on stdin, one result line on stdout).
//
// 'a' (same algorithm): the data plane's per-frame work: descriptor and length checks at the edge, the table algorithm
//     (separate arrays of 8-byte keys, 16-bit references and rule bytes in 16-slot groups aligned to 16 bytes, as many
//     groups as make it at most 7/8 full at capacity, the home group from the hash's high half scaled to the group count,
//     one aligned SSE2 compare of 7-bit tags whose bit 6 is the key kind, linear probing over groups, the verdict
//     precomputed in the slot), and striped verdict counters in a second pass.
// 's' (Swiss table): the native anchor, a plain Swiss table as GCC -O3 builds it: 8-byte slots (48-bit key, 16-bit
//     reference), 16-slot groups aligned to 16 bytes, one aligned SSE2 compare per group, 7-bit tags, quadratic
//     probing over groups, load factor at most 7/8; the same edge checks, no counters.
// Each result line: "<ms> <checksum> <verdicts counted>"; checksums are folded after the clock stops.
#include <emmintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EMPTY 0x80
#define MISS 0xffffffffu
#define NO_REF 0xffff0000u
enum {
  R_BROADCAST = 0, R_MC_EXACT = 1, R_UNICAST = 4, R_DROP_UNKNOWN = 7,
  R_DROP_MC = 8, R_DROP_RUNT = 9, R_DROP_OVERSIZE = 10, R_DROP_BAD_DESC = 11,
};
#define STRIPES 4
#define KEY48 0xffffffffffffull

static const uint64_t seed = 42;

static inline uint64_t mix(uint64_t k) {
  uint64_t h = (k ^ seed) * 0x9e3779b97f4a7c15ull;
  return h ^ (h >> 32);
}

static inline uint64_t key6(const uint8_t *p) {
  uint32_t lo; uint16_t hi;
  memcpy(&lo, p, 4); memcpy(&hi, p + 4, 2);
  return ((uint64_t)hi << 32) | lo;
}

// ---- the data plane's algorithm ----------------------------------------------------------

static uint32_t a_groups;
static uint8_t *a_ctrl, *a_rules;
static uint64_t *a_keys;
static uint16_t *a_refs;

static inline uint32_t a_home(uint64_t h) { return (uint32_t)(((h >> 32) * a_groups) >> 32); }

static void a_put(uint64_t k, uint32_t verdict) {
  uint64_t h = mix(k);
  for (uint32_t g = a_home(h);; g = g + 1 == a_groups ? 0 : g + 1) {
    for (uint32_t j = 0; j < 16; j++) {
      uint32_t idx = g * 16 + j;
      if (a_ctrl[idx] != EMPTY) continue;
      a_keys[idx] = k; a_refs[idx] = (uint16_t)(verdict >> 16); a_rules[idx] = (uint8_t)verdict;
      a_ctrl[idx] = (uint8_t)(h & 0x3f);
      return;
    }
  }
}

// Returns the verdict stored with the key, or MISS.
static inline uint32_t a_lookup(uint64_t k) {
  uint64_t h = mix(k);
  uint32_t g = a_home(h);
  __m128i vt = _mm_set1_epi8((char)(h & 0x3f)), ve = _mm_set1_epi8((char)EMPTY);
  for (uint32_t probe = 0; probe < a_groups; probe++) {
    __m128i c = _mm_load_si128((const __m128i *)(a_ctrl + g * 16));
    uint32_t m = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(c, vt));
    while (m) {
      uint32_t idx = g * 16 + (uint32_t)__builtin_ctz(m);
      if (a_keys[idx] == k) return a_rules[idx] | ((uint32_t)a_refs[idx] << 16);
      m &= m - 1;
    }
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(c, ve))) return MISS;
    g = g + 1 == a_groups ? 0 : g + 1;
  }
  return MISS;
}

// ---- the Swiss table (native anchor) ------------------------------------------------------

static uint32_t s_groups_mask;
static uint8_t *s_ctrl;
static uint64_t *s_slots;

static void s_put(uint64_t k, uint16_t ref) {
  uint64_t h = mix(k);
  uint32_t g = (uint32_t)(h >> 7) & s_groups_mask;
  for (uint32_t step = 1;; step++) {
    for (uint32_t j = 0; j < 16; j++) {
      uint32_t idx = g * 16 + j;
      if (s_ctrl[idx] != EMPTY) continue;
      s_ctrl[idx] = (uint8_t)(h & 0x7f);
      s_slots[idx] = k | ((uint64_t)ref << 48);
      return;
    }
    g = (g + step) & s_groups_mask;
  }
}

// Returns the slot's 16-bit reference, or MISS.
static inline uint32_t s_lookup(uint64_t k) {
  uint64_t h = mix(k);
  uint32_t g = (uint32_t)(h >> 7) & s_groups_mask;
  __m128i vt = _mm_set1_epi8((char)(h & 0x7f)), ve = _mm_set1_epi8((char)EMPTY);
  for (uint32_t step = 1; step <= s_groups_mask + 1; step++) {
    __m128i c = _mm_load_si128((const __m128i *)(s_ctrl + g * 16));
    uint32_t m = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(c, vt));
    while (m) {
      uint64_t s = s_slots[g * 16 + (uint32_t)__builtin_ctz(m)];
      if ((s & KEY48) == k) return (uint32_t)(s >> 48);
      m &= m - 1;
    }
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(c, ve))) return MISS;
    g = (g + step) & s_groups_mask;
  }
  return MISS;
}

// ---- passes -------------------------------------------------------------------------------

static uint32_t n, pool_len, max_frame;
static uint32_t *desc, *verdicts;
static uint8_t *pool;
static uint64_t counters[32 * STRIPES];

static inline uint32_t edge(uint32_t i, const uint8_t **p) {
  uint32_t off = desc[2 * i], len = desc[2 * i + 1];
  if (len > pool_len || off > pool_len - len) return R_DROP_BAD_DESC | NO_REF;
  if (len < 14) return R_DROP_RUNT | NO_REF;
  if (len > max_frame) return R_DROP_OVERSIZE | NO_REF;
  *p = pool + off;
  return MISS;
}

static void pass_same(void) {
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *p;
    uint32_t v = edge(i, &p);
    if (v == MISS) {
      uint64_t k = key6(p);
      v = a_lookup(k);
      if (v != MISS) {}
      else if (k == KEY48) v = R_BROADCAST | NO_REF;
      else v = p[0] & 1 ? R_DROP_MC | NO_REF : R_DROP_UNKNOWN | NO_REF;
    }
    verdicts[i] = v;
  }
  for (uint32_t i = 0; i < n; i++) counters[(verdicts[i] & 0x1f) * STRIPES + (i & (STRIPES - 1))]++;
}

static void pass_swiss(void) {
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t *p;
    uint32_t v = edge(i, &p);
    if (v == MISS) {
      uint64_t k = key6(p);
      uint32_t ref;
      if (k == KEY48) v = R_BROADCAST | NO_REF;
      else if (p[0] & 1) v = (ref = s_lookup(k)) != MISS ? R_MC_EXACT | (ref << 16) : R_DROP_MC | NO_REF;
      else v = (ref = s_lookup(k)) != MISS ? R_UNICAST | (ref << 16) : R_DROP_UNKNOWN | NO_REF;
    }
    verdicts[i] = v;
  }
}

static int32_t fold(int32_t sum, uint32_t rule, uint32_t client) {
  uint32_t v = rule == R_UNICAST ? rule * 0x10001u + client : rule * 0x10001u;
  return (int32_t)((uint32_t)sum * 31u + v);
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  FILE *f = fopen(argv[1], "rb");
  if (!f) return 2;
  // Header: frames, pool bytes, MACs, groups, maxFrame, the data plane's entry capacity.
  uint32_t hdr[6];
  if (fread(hdr, 4, 6, f) != 6) return 2;
  n = hdr[0]; pool_len = hdr[1]; max_frame = hdr[4];
  uint32_t n_macs = hdr[2], n_groups = hdr[3], capacity = hdr[5], total = n_macs + n_groups;
  uint8_t (*macs)[8] = malloc((size_t)total * 8);
  desc = malloc((size_t)n * 8);
  pool = malloc((size_t)pool_len + 64);
  verdicts = malloc((size_t)n * 4);
  if (!macs || !desc || !pool || !verdicts) return 3;
  if (fread(macs, 8, total, f) != total || fread(desc, 8, n, f) != n || fread(pool, 1, pool_len, f) != pool_len) return 2;
  fclose(f);

  a_groups = (uint32_t)((((uint64_t)capacity * 8 + 6) / 7 + 15) / 16);
  uint32_t slots = a_groups * 16;
  a_ctrl = aligned_alloc(64, slots);
  a_keys = aligned_alloc(64, (size_t)slots * 8);
  a_refs = malloc((size_t)slots * 2);
  a_rules = malloc(slots);
  memset(a_ctrl, EMPTY, slots);

  uint32_t s_count = 16;
  while (s_count * 7 < total * 8) s_count *= 2;
  s_groups_mask = s_count / 16 - 1;
  s_ctrl = aligned_alloc(16, s_count);
  s_slots = aligned_alloc(64, (size_t)s_count * 8);
  if (!a_ctrl || !a_keys || !a_refs || !a_rules || !s_ctrl || !s_slots) return 3;
  memset(s_ctrl, EMPTY, s_count);

  for (uint32_t i = 0; i < total; i++) {
    uint16_t ref; memcpy(&ref, macs[i] + 6, 2);
    uint64_t k = key6(macs[i]);
    a_put(k, (i < n_macs ? R_UNICAST : R_MC_EXACT) | ((uint32_t)ref << 16));
    s_put(k, ref);
  }
  printf("ready %u %u\n", slots, s_count);
  fflush(stdout);

  char line[16];
  while (fgets(line, sizeof line, stdin)) {
    if (line[0] != 'a' && line[0] != 's') break;
    uint64_t before = 0, after = 0;
    for (uint32_t i = 0; i < 32 * STRIPES; i++) before += counters[i];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (line[0] == 'a') pass_same(); else pass_swiss();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    for (uint32_t i = 0; i < 32 * STRIPES; i++) after += counters[i];
    int32_t sum = 0;
    for (uint32_t i = 0; i < n; i++) sum = fold(sum, verdicts[i] & 0x1f, verdicts[i] >> 16);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("%.6f %d %llu\n", ms, sum, (unsigned long long)(after - before));
    fflush(stdout);
  }
  return 0;
}
