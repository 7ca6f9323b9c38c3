// The AXI4 slave for the operation windows (ACCUM, LOAD_XOR, LOAD_ADD, READ, SWAP, IDENT,
// SWAP_SET):
// bursts of one beat per cycle for writes, one burst at a time per direction, each beat
// carrying LANES 64-bit words handled by LANES lanes in parallel. The next write burst's AW is
// taken in the cycle of the current burst's last beat and the B response is registered beside
// it, so back-to-back write bursts (and single-beat writes) run at one beat per cycle with no
// cycle between them.
//
// A second source of write beats is the AXI4-Lite port (l_*: one 64-bit beat in the cycle of
// l_go, answered by l_bad that cycle). It wins the lanes whenever it has a beat, which it can
// have at most every other cycle (its next AW and W follow its B), so it never waits and the
// AXI4 port keeps at least every other cycle; AXI4 write and read beats alternate as before.
//
// A beat acts on the lanes its address and size cover (so a 64-bit SWAP on a wider bus swaps
// one slot); on a write, a covered lane acts when its 8 strobe bits are all set, is skipped when
// none are, and a partial strobe is refused: no 64-bit word is ever half written. Refused: slots at or
// beyond SLOTS, partial strobes, WRAP bursts, sizes under 64 bits, a write to a read window or a
// read of a write window. A refused beat changes nothing, counts once in ERRORS, and makes the
// burst's response SLVERR.
`default_nettype none
module atomik_windows #(
    parameter integer SLOTS = 16,
    parameter integer LANES = 1,
    parameter integer ID_W  = 4,
    parameter integer ADDR_W = 19
) (
    input  wire                 clk,
    input  wire                 rst,
    input  wire                 clear,
    input  wire                 l_go,
    input  wire [ADDR_W-1:0]    l_addr,
    input  wire [63:0]          l_data,
    input  wire [7:0]           l_strb,
    output wire                 l_bad,
    input  wire [ID_W-1:0]      s_axi_awid,
    input  wire [ADDR_W-1:0]    s_axi_awaddr,
    input  wire [7:0]           s_axi_awlen,
    input  wire [2:0]           s_axi_awsize,
    input  wire [1:0]           s_axi_awburst,
    input  wire                 s_axi_awvalid,
    output wire                 s_axi_awready,
    input  wire [64*LANES-1:0]  s_axi_wdata,
    input  wire [8*LANES-1:0]   s_axi_wstrb,
    /* verilator lint_off UNUSEDSIGNAL */
    input  wire                 s_axi_wlast,     // bursts end by their length
    /* verilator lint_on UNUSEDSIGNAL */
    input  wire                 s_axi_wvalid,
    output wire                 s_axi_wready,
    output reg  [ID_W-1:0]      s_axi_bid,
    output reg  [1:0]           s_axi_bresp,
    output reg                  s_axi_bvalid,
    input  wire                 s_axi_bready,
    input  wire [ID_W-1:0]      s_axi_arid,
    input  wire [ADDR_W-1:0]    s_axi_araddr,
    input  wire [7:0]           s_axi_arlen,
    input  wire [2:0]           s_axi_arsize,
    input  wire [1:0]           s_axi_arburst,
    input  wire                 s_axi_arvalid,
    output wire                 s_axi_arready,
    output reg  [ID_W-1:0]      s_axi_rid,
    output reg  [64*LANES-1:0]  s_axi_rdata,
    output reg  [1:0]           s_axi_rresp,
    output reg                  s_axi_rlast,
    output reg                  s_axi_rvalid,
    input  wire                 s_axi_rready,
    output wire                 any_dirty,
    output reg  [7:0]           accums_inc,   // ACCUMs applied this cycle
    output reg                  error_inc     // a beat refused this cycle
);
`include "atomik_regs.vh"
    localparam integer LB   = LANES <= 1 ? 0 : $clog2(LANES);
    localparam integer ROWS = SLOTS / LANES;
    localparam integer RW   = ROWS <= 2 ? 1 : $clog2(ROWS);
    localparam integer BUSB = 3 + LB;                      // log2 bytes per beat
    localparam integer IDENT_WORDS = (SLOTS + 63) / 64;
    localparam [12:0] LANE_MASK = LANES[12:0] - 13'd1;
    localparam [13:0] SLOTS14 = SLOTS[13:0], IDENT14 = IDENT_WORDS[13:0];
    localparam [2:0] K_ACCUM = 3'd0, K_LOAD_XOR = 3'd1, K_LOAD_ADD = 3'd2, K_READ = 3'd3, K_SWAP = 3'd4,
                     K_SWAP_SET = 3'd5, K_STAGE = 3'd6;
    localparam [2:0] W_ACCUM = A_ACCUM_BASE[18:16], W_LOAD_XOR = A_LOAD_XOR_BASE[18:16],
                     W_LOAD_ADD = A_LOAD_ADD_BASE[18:16], W_READ = A_READ_BASE[18:16],
                     W_SWAP = A_SWAP_BASE[18:16], W_IDENT = A_IDENT_BASE[18:16],
                     W_SWAP_SET = A_SWAP_SET_BASE[18:16];
    localparam [1:0] OKAY = 2'b00, SLVERR = 2'b10, FIXED = 2'b00, WRAP = 2'b10;

    // ---- write burst state
    reg              w_active;
    reg [ADDR_W-1:0] w_addr;
    reg [7:0]        w_left;
    reg [2:0]        w_size;
    reg              w_fixed, w_bad;
    reg [2:0]        w_kind;
    reg              w_err;                     // some beat of this burst was refused
    reg [ID_W-1:0]   w_id;
    // ---- read burst state
    reg              r_active;
    reg [ADDR_W-1:0] r_addr;
    reg [7:0]        r_left;
    reg [2:0]        r_size;
    reg              r_fixed, r_bad, r_ident;
    reg [2:0]        r_kind;
    reg              r_inflight, r_inflight_bad, r_inflight_last;
    reg [12:0]       r_inflight_word;
    reg [LANES-1:0]  r_inflight_ok;
    reg              prio_w;                    // who wins the lanes when both want them
    reg [63:0]       stage;                     // SWAP_SET's next reference

    wire r_want = r_active && !r_inflight && !s_axi_rvalid;
    wire w_last = w_left == 8'd0;
    // A write beat takes the lanes unless a read beat has priority; a burst's last beat also
    // needs the B register, free or being emptied this cycle.
    wire w_may  = w_active && !l_go && (!r_want || prio_w) && (!w_last || !s_axi_bvalid || s_axi_bready);
    wire w_go   = w_may && s_axi_wvalid;
    wire r_go   = r_want && !w_go && !l_go;
    assign s_axi_wready  = w_may;
    assign s_axi_awready = !w_active || (w_go && w_last);
    assign s_axi_arready = !r_active;

    // Window kinds.
    function [3:0] wkind;                       // {bad, kind} of a write window
        input [2:0] win;
        case (win)
            W_ACCUM:    wkind = {1'b0, K_ACCUM};
            W_LOAD_XOR: wkind = {1'b0, K_LOAD_XOR};
            W_LOAD_ADD: wkind = {1'b0, K_LOAD_ADD};
            W_SWAP_SET: wkind = {1'b0, K_STAGE};
            default:    wkind = {1'b1, K_READ};
        endcase
    endfunction
    function [3:0] rkind;                       // {bad, kind} of a read window
        input [2:0] win;
        case (win)
            W_READ:  rkind = {1'b0, K_READ};
            W_SWAP:  rkind = {1'b0, K_SWAP};
            W_IDENT: rkind = {1'b0, K_READ};
            W_SWAP_SET: rkind = {1'b0, K_SWAP_SET};
            default: rkind = {1'b1, K_READ};
        endcase
    endfunction
    function [ADDR_W-1:0] next_addr;
        input [ADDR_W-1:0] a;
        input [2:0] size;
        input fixed;
        reg [ADDR_W-1:0] step;
        begin
            step = {{(ADDR_W-1){1'b0}}, 1'b1} << size;
            next_addr = fixed ? a : ((a & ~(step - 1'b1)) + step);
        end
    endfunction

    // ---- the beat presented to the lanes this cycle: a write beat (AXI4-Lite or AXI4) or a read
    wire              wr_go = l_go || w_go;
    wire [3:0]        l_kind = wkind(l_addr[18:16]);
    wire [2:0]        wr_kind = l_go ? l_kind[2:0] : w_kind;
    wire              wr_bad = l_go ? l_kind[3] : w_bad;
    wire [64*LANES-1:0] wr_data = l_go ? {LANES{l_data}} : s_axi_wdata;
    wire [8*LANES-1:0]  wr_strb = l_go ? {LANES{l_strb}} : s_axi_wstrb;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [ADDR_W-1:0] beat_addr = l_go ? l_addr : w_go ? w_addr : r_addr;   // [18:16] chose the window
    wire [12:0]       beat_word = beat_addr[15:3] & ~LANE_MASK;   // slot of lane 0
    wire [12:0]       beat_row_full = beat_word >> LB;
    /* verilator lint_on UNUSEDSIGNAL */
    wire [RW-1:0]     beat_row  = beat_row_full[RW-1:0];
    reg  [LANES-1:0]  lane_en;                  // lanes that act
    reg               beat_bad;                 // the beat is refused
    wire [2:0]        beat_size = l_go ? 3'd3 : w_go ? w_size : r_size;
    integer l;
    always @* begin
        beat_bad = 1'b0;
        lane_en  = {LANES{1'b0}};
        for (l = 0; l < LANES; l = l + 1) begin
            // The lanes a beat's size covers: [address aligned to size, + 2^size) of the beat;
            // on a write they act when fully strobed (strobes elsewhere are ignored).
            if (((l * 8) >> beat_size) == ({29'd0, beat_addr[BUSB-1:0]} >> beat_size) || {29'd0, beat_size} >= BUSB) begin
                if (!wr_go || wr_strb[8*l +: 8] == 8'hff) lane_en[l] = 1'b1;
                else if (wr_strb[8*l +: 8] != 8'h00) beat_bad = 1'b1;
            end
            if (lane_en[l] && ({1'b0, beat_word} | l[13:0]) >= SLOTS14)
                beat_bad = 1'b1;
        end
        if (l_go && l_strb != 8'hff) beat_bad = 1'b1;              // one whole word, as on AXI4-Lite
        if (wr_go && wr_bad) beat_bad = 1'b1;
        if (wr_go && wr_kind == K_STAGE && beat_addr[15:0] != 16'd0) beat_bad = 1'b1;
        if (r_go && (r_bad || r_size < 3'd3)) beat_bad = 1'b1;
        if (r_go && r_ident && ({1'b0, beat_addr[15:3]} >= IDENT14 || r_size != 3'd3)) beat_bad = 1'b1;
        if (r_go && r_ident) lane_en = {LANES{1'b0}};
        if (wr_go && wr_kind == K_STAGE) lane_en = {LANES{1'b0}};   // staged, not a slot operation
        if (beat_bad) lane_en = {LANES{1'b0}};
    end
    assign l_bad = beat_bad;

    // ---- lanes
    wire [64*LANES-1:0]   lane_state;
    wire [LANES-1:0]      lane_accum;
    wire [SLOTS-1:0]      clean_all;
    genvar g;
    generate
        for (g = 0; g < LANES; g = g + 1) begin : lane
            wire [ROWS-1:0] clean_bits;
            atomik_lane #(.ROWS(ROWS), .RW(RW)) u (
                .clk(clk), .rst(rst), .clear(clear),
                .req_valid((wr_go || r_go) && lane_en[g]),
                .req_kind(wr_go ? wr_kind : r_kind),
                .req_row(beat_row),
                .req_data(wr_go ? wr_data[64*g +: 64] : stage),
                .res_state(lane_state[64*g +: 64]),
                .accum_done(lane_accum[g]),
                .clean_bits(clean_bits)
            );
            genvar r;
            for (r = 0; r < ROWS; r = r + 1) begin : bit_of
                assign clean_all[r * LANES + g] = clean_bits[r];
            end
        end
    endgenerate
    assign any_dirty = ~&clean_all;

    // Identity bitmap word of the read in flight; slots past SLOTS read as identity.
    wire [IDENT_WORDS*64-1:0] clean_padded = {{(IDENT_WORDS*64-SLOTS){1'b1}}, clean_all};
    wire [63:0] ident_word = clean_padded[64 * r_inflight_word +: 64];

    integer c;
    always @* begin
        accums_inc = 8'd0;
        for (c = 0; c < LANES; c = c + 1) accums_inc = accums_inc + {7'd0, lane_accum[c]};
    end

    always @(posedge clk) begin
        error_inc <= 1'b0;
        if (rst) begin
            w_active <= 1'b0; r_active <= 1'b0; r_inflight <= 1'b0;
            s_axi_bvalid <= 1'b0; s_axi_rvalid <= 1'b0; prio_w <= 1'b0;
        end else begin
            if (s_axi_bvalid && s_axi_bready) s_axi_bvalid <= 1'b0;
            if (wr_go && wr_kind == K_STAGE && !beat_bad && wr_strb[7:0] == 8'hff)
                stage <= wr_data[63:0];
            if (l_go && beat_bad) error_inc <= 1'b1;
            if (w_go) begin
                prio_w <= 1'b0;
                w_addr <= next_addr(w_addr, w_size, w_fixed);
                w_left <= w_left - 8'd1;
                if (beat_bad) begin w_err <= 1'b1; error_inc <= 1'b1; end
                if (w_last) begin
                    w_active     <= 1'b0;
                    s_axi_bvalid <= 1'b1;
                    s_axi_bid    <= w_id;
                    s_axi_bresp  <= (w_err || beat_bad) ? SLVERR : OKAY;
                end
            end
            // AW accepted (also in the cycle of the last beat: then these win): a new burst.
            if (s_axi_awvalid && s_axi_awready) begin
                w_active <= 1'b1;
                w_addr   <= s_axi_awaddr;
                w_left   <= s_axi_awlen;
                w_size   <= s_axi_awsize;
                w_fixed  <= s_axi_awburst == FIXED;
                {w_bad, w_kind} <= wkind(s_axi_awaddr[18:16]);
                if (s_axi_awburst == WRAP || s_axi_awsize > BUSB[2:0]) w_bad <= 1'b1;
                w_err    <= 1'b0;
                w_id     <= s_axi_awid;
            end

            // AR accepted: a new read burst.
            if (s_axi_arvalid && s_axi_arready) begin
                r_active <= 1'b1;
                r_addr   <= s_axi_araddr;
                r_left   <= s_axi_arlen;
                r_size   <= s_axi_arsize;
                r_fixed  <= s_axi_arburst == FIXED;
                {r_bad, r_kind} <= rkind(s_axi_araddr[18:16]);
                if (s_axi_arburst == WRAP || s_axi_arsize > BUSB[2:0]) r_bad <= 1'b1;
                r_ident  <= s_axi_araddr[18:16] == W_IDENT;
                s_axi_rid <= s_axi_arid;
            end
            r_inflight <= 1'b0;
            if (r_go) begin
                prio_w <= 1'b1;
                r_inflight      <= 1'b1;
                r_inflight_bad  <= beat_bad;
                r_inflight_last <= r_left == 8'd0;
                r_inflight_word <= r_addr[15:3];
                r_inflight_ok   <= lane_en;
                r_addr <= next_addr(r_addr, r_size, r_fixed);
                r_left <= r_left - 8'd1;
                if (beat_bad) error_inc <= 1'b1;
                if (r_left == 8'd0) r_active <= 1'b0;
            end
            if (r_inflight) begin
                s_axi_rvalid <= 1'b1;
                s_axi_rlast  <= r_inflight_last;
                s_axi_rresp  <= r_inflight_bad ? SLVERR : OKAY;
                for (c = 0; c < LANES; c = c + 1)
                    s_axi_rdata[64*c +: 64] <= r_inflight_ok[c] ? lane_state[64*c +: 64] : 64'd0;
                if (r_ident && !r_inflight_bad)
                    s_axi_rdata <= {LANES{ident_word}};
            end
            if (s_axi_rvalid && s_axi_rready) s_axi_rvalid <= 1'b0;
        end
    end
endmodule
`default_nettype wire
