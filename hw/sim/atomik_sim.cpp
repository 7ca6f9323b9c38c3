// C ABI over the Verilator model of hw/rtl/atomik_top.v (one lane, 64-bit buses): a bus master
// that turns word reads and writes into AXI4-Lite transactions (header, offsets below the first
// window) or AXI4 INCR bursts (windows), one clock edge at a time. Used by libatomik's
// `rtl-model` feature (libatomik/src/backend/fpga/rtl.rs).
#include <cstdint>
#include <new>

#include "Vatomik_top.h"
#include "verilated.h"

namespace {
constexpr uint64_t kFirstWindow = 0x10000;
constexpr uint64_t kMaxCycles = 100000;  // per handshake: a hung bus is an error, not a hang

struct Sim {
    VerilatedContext ctx;
    Vatomik_top top{&ctx};
    uint64_t cycles = 0;
};

void edge(Sim* s) {
    s->top.clk = 1;
    s->top.eval();
    s->top.clk = 0;
    s->top.eval();
    s->cycles++;
}

// Beats of the next burst of 64-bit words at `a`: at most 256, never across a 4 KiB boundary.
uint32_t burst_len(uint64_t a, uint32_t remaining) {
    uint32_t room = (uint32_t)((4096 - (a & 4095)) / 8);
    uint32_t len = remaining < room ? remaining : room;
    return len > 256 ? 256 : len;
}

// Holds `valid` until `ready` is seen at a rising edge; false when it never comes.
template <typename Ready>
bool handshake(Sim* s, Ready ready) {
    for (uint64_t i = 0; i < kMaxCycles; i++) {
        s->top.eval();
        bool r = ready();
        edge(s);
        if (r) return true;
    }
    return false;
}
}  // namespace

extern "C" {

// Status codes: 0 OKAY, 2 SLVERR (the device refused), -1 bus timeout.
void* atomik_sim_new(void) {
    Sim* s = new (std::nothrow) Sim();
    if (!s) return nullptr;
    s->top.clk = 0;
    s->top.rst = 1;
    s->top.eval();
    for (int i = 0; i < 4; i++) edge(s);
    s->top.rst = 0;
    edge(s);
    return s;
}

void atomik_sim_free(void* p) { delete static_cast<Sim*>(p); }

uint64_t atomik_sim_cycles(void* p) { return static_cast<Sim*>(p)->cycles; }

int atomik_sim_write(void* p, uint64_t addr, const uint64_t* words, uint32_t n) {
    Sim* s = static_cast<Sim*>(p);
    auto& t = s->top;
    int status = 0;
    if (addr < kFirstWindow) {
        for (uint32_t i = 0; i < n; i++) {
            t.s_axil_awaddr = addr + 8 * i;
            t.s_axil_awvalid = 1;
            t.s_axil_wdata = words[i];
            t.s_axil_wstrb = 0xff;
            t.s_axil_wvalid = 1;
            bool aw = false, w = false;
            for (uint64_t c = 0; c < kMaxCycles && !(aw && w); c++) {
                t.eval();
                bool aw_hs = t.s_axil_awvalid && t.s_axil_awready;
                bool w_hs = t.s_axil_wvalid && t.s_axil_wready;
                edge(s);
                if (aw_hs) { aw = true; t.s_axil_awvalid = 0; }
                if (w_hs) { w = true; t.s_axil_wvalid = 0; }
            }
            if (!(aw && w)) return -1;
            t.s_axil_bready = 1;
            int resp = 0;
            if (!handshake(s, [&] { resp = t.s_axil_bresp; return t.s_axil_bvalid != 0; })) return -1;
            t.s_axil_bready = 0;
            if (resp) status = resp;
        }
        return status;
    }
    uint32_t done = 0;
    while (done < n) {
        uint64_t a = addr + 8ull * done;
        uint32_t len = burst_len(a, n - done);
        t.s_axi_awid = 0;
        t.s_axi_awaddr = a;
        t.s_axi_awlen = len - 1;
        t.s_axi_awsize = 3;
        t.s_axi_awburst = 1;
        t.s_axi_awvalid = 1;
        if (!handshake(s, [&] { return t.s_axi_awready != 0; })) return -1;
        t.s_axi_awvalid = 0;
        for (uint32_t i = 0; i < len; i++) {
            t.s_axi_wdata = words[done + i];
            t.s_axi_wstrb = 0xff;
            t.s_axi_wlast = i == len - 1;
            t.s_axi_wvalid = 1;
            if (!handshake(s, [&] { return t.s_axi_wready != 0; })) return -1;
        }
        t.s_axi_wvalid = 0;
        t.s_axi_bready = 1;
        int resp = 0;
        if (!handshake(s, [&] { resp = t.s_axi_bresp; return t.s_axi_bvalid != 0; })) return -1;
        t.s_axi_bready = 0;
        if (resp) status = resp;
        done += len;
    }
    return status;
}

int atomik_sim_read(void* p, uint64_t addr, uint64_t* out, uint32_t n) {
    Sim* s = static_cast<Sim*>(p);
    auto& t = s->top;
    int status = 0;
    if (addr < kFirstWindow) {
        for (uint32_t i = 0; i < n; i++) {
            t.s_axil_araddr = addr + 8 * i;
            t.s_axil_arvalid = 1;
            if (!handshake(s, [&] { return t.s_axil_arready != 0; })) return -1;
            t.s_axil_arvalid = 0;
            t.s_axil_rready = 1;
            int resp = 0;
            if (!handshake(s, [&] {
                    out[i] = t.s_axil_rdata;
                    resp = t.s_axil_rresp;
                    return t.s_axil_rvalid != 0;
                }))
                return -1;
            t.s_axil_rready = 0;
            if (resp) status = resp;
        }
        return status;
    }
    uint32_t done = 0;
    while (done < n) {
        uint64_t a = addr + 8ull * done;
        uint32_t len = burst_len(a, n - done);
        t.s_axi_arid = 0;
        t.s_axi_araddr = a;
        t.s_axi_arlen = len - 1;
        t.s_axi_arsize = 3;
        t.s_axi_arburst = 1;
        t.s_axi_arvalid = 1;
        if (!handshake(s, [&] { return t.s_axi_arready != 0; })) return -1;
        t.s_axi_arvalid = 0;
        t.s_axi_rready = 1;
        for (uint32_t i = 0; i < len; i++) {
            int resp = 0;
            if (!handshake(s, [&] {
                    out[done + i] = t.s_axi_rdata;
                    resp = t.s_axi_rresp;
                    return t.s_axi_rvalid != 0;
                }))
                return -1;
            if (resp) status = resp;
        }
        t.s_axi_rready = 0;
        done += len;
    }
    return status;
}
}
