// The atomik slot array: SLOTS slots in LANES lanes, header/control on an AXI4-Lite port
// (s_axil_*), the operation windows on an AXI4 burst port (s_axi_*), both 64-bit-word
// addressed as in hw/regs/atomik.rdl. Window writes (ACCUM, LOAD, SWAP_SET staging) are taken
// on either port, so two masters can ACCUM at once, one on each. Synchronous active-high
// reset; reset and CONTROL.CLEAR leave every slot at reference 0, accumulator identity,
// operator XOR in one cycle.
`default_nettype none
module atomik_top #(
    parameter integer SLOTS  = 16,   // 1..8192, a multiple of LANES
    parameter integer LANES  = 1,    // 1, 2, 4 or 8
    parameter integer ID_W   = 4,
    parameter integer ADDR_W = 19
) (
    input  wire                 clk,
    input  wire                 rst,
    // AXI4-Lite: header and control
    input  wire [ADDR_W-1:0]    s_axil_awaddr,
    input  wire [2:0]           s_axil_awprot,
    input  wire                 s_axil_awvalid,
    output wire                 s_axil_awready,
    input  wire [63:0]          s_axil_wdata,
    input  wire [7:0]           s_axil_wstrb,
    input  wire                 s_axil_wvalid,
    output wire                 s_axil_wready,
    output wire [1:0]           s_axil_bresp,
    output wire                 s_axil_bvalid,
    input  wire                 s_axil_bready,
    input  wire [ADDR_W-1:0]    s_axil_araddr,
    input  wire [2:0]           s_axil_arprot,
    input  wire                 s_axil_arvalid,
    output wire                 s_axil_arready,
    output wire [63:0]          s_axil_rdata,
    output wire [1:0]           s_axil_rresp,
    output wire                 s_axil_rvalid,
    input  wire                 s_axil_rready,
    // AXI4: operation windows
    input  wire [ID_W-1:0]      s_axi_awid,
    input  wire [ADDR_W-1:0]    s_axi_awaddr,
    input  wire [7:0]           s_axi_awlen,
    input  wire [2:0]           s_axi_awsize,
    input  wire [1:0]           s_axi_awburst,
    input  wire                 s_axi_awvalid,
    output wire                 s_axi_awready,
    input  wire [64*LANES-1:0]  s_axi_wdata,
    input  wire [8*LANES-1:0]   s_axi_wstrb,
    input  wire                 s_axi_wlast,
    input  wire                 s_axi_wvalid,
    output wire                 s_axi_wready,
    output wire [ID_W-1:0]      s_axi_bid,
    output wire [1:0]           s_axi_bresp,
    output wire                 s_axi_bvalid,
    input  wire                 s_axi_bready,
    input  wire [ID_W-1:0]      s_axi_arid,
    input  wire [ADDR_W-1:0]    s_axi_araddr,
    input  wire [7:0]           s_axi_arlen,
    input  wire [2:0]           s_axi_arsize,
    input  wire [1:0]           s_axi_arburst,
    input  wire                 s_axi_arvalid,
    output wire                 s_axi_arready,
    output wire [ID_W-1:0]      s_axi_rid,
    output wire [64*LANES-1:0]  s_axi_rdata,
    output wire [1:0]           s_axi_rresp,
    output wire                 s_axi_rlast,
    output wire                 s_axi_rvalid,
    input  wire                 s_axi_rready
);
    wire        clear, any_dirty, error_inc;
    wire        win_go, win_bad;
    wire [ADDR_W-1:0] win_addr;
    wire [63:0] win_data;
    wire [7:0]  win_strb;
    wire [7:0]  accums_inc;
    reg  [63:0] errors, accums;

    // Protection bits and WLAST carry nothing this design needs (bursts end by their length).
    wire unused = &{1'b0, s_axil_awprot, s_axil_arprot, s_axi_wlast};

    always @(posedge clk) begin
        if (rst || clear) begin
            errors <= 64'd0;
            accums <= 64'd0;
        end else begin
            errors <= errors + {63'd0, error_inc};
            accums <= accums + {56'd0, accums_inc};
        end
    end

    atomik_regs_axil #(.SLOTS(SLOTS), .LANES(LANES), .ADDR_W(ADDR_W)) regs (
        .clk(clk), .rst(rst),
        .s_axil_awaddr(s_axil_awaddr), .s_axil_awvalid(s_axil_awvalid), .s_axil_awready(s_axil_awready),
        .s_axil_wdata(s_axil_wdata), .s_axil_wstrb(s_axil_wstrb), .s_axil_wvalid(s_axil_wvalid),
        .s_axil_wready(s_axil_wready), .s_axil_bresp(s_axil_bresp), .s_axil_bvalid(s_axil_bvalid),
        .s_axil_bready(s_axil_bready), .s_axil_araddr(s_axil_araddr), .s_axil_arvalid(s_axil_arvalid),
        .s_axil_arready(s_axil_arready), .s_axil_rdata(s_axil_rdata), .s_axil_rresp(s_axil_rresp),
        .s_axil_rvalid(s_axil_rvalid), .s_axil_rready(s_axil_rready),
        .clear(clear), .win_go(win_go), .win_addr(win_addr), .win_data(win_data), .win_strb(win_strb),
        .win_bad(win_bad), .any_dirty(any_dirty), .errors(errors), .accums(accums)
    );

    atomik_windows #(.SLOTS(SLOTS), .LANES(LANES), .ID_W(ID_W), .ADDR_W(ADDR_W)) windows (
        .clk(clk), .rst(rst), .clear(clear),
        .l_go(win_go), .l_addr(win_addr), .l_data(win_data), .l_strb(win_strb), .l_bad(win_bad),
        .s_axi_awid(s_axi_awid), .s_axi_awaddr(s_axi_awaddr), .s_axi_awlen(s_axi_awlen),
        .s_axi_awsize(s_axi_awsize), .s_axi_awburst(s_axi_awburst), .s_axi_awvalid(s_axi_awvalid),
        .s_axi_awready(s_axi_awready), .s_axi_wdata(s_axi_wdata), .s_axi_wstrb(s_axi_wstrb),
        .s_axi_wlast(s_axi_wlast), .s_axi_wvalid(s_axi_wvalid), .s_axi_wready(s_axi_wready),
        .s_axi_bid(s_axi_bid), .s_axi_bresp(s_axi_bresp), .s_axi_bvalid(s_axi_bvalid),
        .s_axi_bready(s_axi_bready), .s_axi_arid(s_axi_arid), .s_axi_araddr(s_axi_araddr),
        .s_axi_arlen(s_axi_arlen), .s_axi_arsize(s_axi_arsize), .s_axi_arburst(s_axi_arburst),
        .s_axi_arvalid(s_axi_arvalid), .s_axi_arready(s_axi_arready), .s_axi_rid(s_axi_rid),
        .s_axi_rdata(s_axi_rdata), .s_axi_rresp(s_axi_rresp), .s_axi_rlast(s_axi_rlast),
        .s_axi_rvalid(s_axi_rvalid), .s_axi_rready(s_axi_rready),
        .any_dirty(any_dirty), .accums_inc(accums_inc), .error_inc(error_inc)
    );
endmodule
`default_nettype wire
