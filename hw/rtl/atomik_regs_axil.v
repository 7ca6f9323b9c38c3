// The AXI4-Lite slave (64-bit data) for the self-describing header and control registers of
// hw/regs/atomik.rdl. Accesses are whole 64-bit words; a write with a partial strobe or to an
// unknown or read-only offset changes nothing and answers SLVERR, as does a read of an
// unknown offset. A write into a window (ACCUM, LOAD_XOR, LOAD_ADD, SWAP_SET) is handed to
// atomik_windows as one beat (win_go, one cycle; it always takes it) and answered with that
// beat's verdict (win_bad), so a second master on this port can ACCUM beside the AXI4 port.
`default_nettype none
module atomik_regs_axil #(
    parameter integer SLOTS  = 16,
    parameter integer LANES  = 1,
    parameter integer ADDR_W = 19
) (
    input  wire              clk,
    input  wire              rst,
    input  wire [ADDR_W-1:0] s_axil_awaddr,
    input  wire              s_axil_awvalid,
    output wire              s_axil_awready,
    input  wire [63:0]       s_axil_wdata,
    input  wire [7:0]        s_axil_wstrb,
    input  wire              s_axil_wvalid,
    output wire              s_axil_wready,
    output reg  [1:0]        s_axil_bresp,
    output reg               s_axil_bvalid,
    input  wire              s_axil_bready,
    input  wire [ADDR_W-1:0] s_axil_araddr,
    input  wire              s_axil_arvalid,
    output wire              s_axil_arready,
    output reg  [63:0]       s_axil_rdata,
    output reg  [1:0]        s_axil_rresp,
    output reg               s_axil_rvalid,
    input  wire              s_axil_rready,
    output reg               clear,          // CONTROL.CLEAR: one-cycle pulse
    output wire              win_go,         // a window write beat, this cycle
    output wire [ADDR_W-1:0] win_addr,
    output wire [63:0]       win_data,
    output wire [7:0]        win_strb,
    input  wire              win_bad,        // atomik_windows refused it
    input  wire              any_dirty,
    input  wire [63:0]       errors,
    input  wire [63:0]       accums
);
`include "atomik_regs.vh"
    localparam [1:0] OKAY = 2'b00, SLVERR = 2'b10;
    localparam [63:0] ID_VALUE = A_ID_RESET, VERSION_VALUE = A_VERSION_RESET;   // the RDL's reset values
    localparam [31:0] SLOTS32 = SLOTS[31:0];
    localparam [7:0]  LANES8 = LANES[7:0];
    /* verilator lint_off WIDTHCONCAT */
    localparam [63:0] GEOMETRY_VALUE = {16'd0, A_GEOMETRY_WINDOW_SHIFT_RESET, LANES8, SLOTS32};
    /* verilator lint_on WIDTHCONCAT */
    localparam [63:0] FEATURES_VALUE = A_FEATURES_RESET;

    // Write: address and data may come in either order; both are held until the response.
    reg              aw_held, w_held;
    reg [ADDR_W-1:0] aw_addr;
    reg [63:0]       w_data;
    reg [7:0]        w_strb;
    assign s_axil_awready = !aw_held && !s_axil_bvalid;
    assign s_axil_wready  = !w_held && !s_axil_bvalid;
    assign s_axil_arready = !s_axil_rvalid;
    wire win = aw_addr[18:16] != 3'd0;
    assign win_go = aw_held && w_held && win;
    assign win_addr = aw_addr;
    assign win_data = w_data;
    assign win_strb = w_strb;

    always @(posedge clk) begin
        clear <= 1'b0;
        if (rst) begin
            aw_held <= 1'b0; w_held <= 1'b0; s_axil_bvalid <= 1'b0; s_axil_rvalid <= 1'b0;
        end else begin
            if (s_axil_awvalid && s_axil_awready) begin aw_held <= 1'b1; aw_addr <= s_axil_awaddr; end
            if (s_axil_wvalid && s_axil_wready) begin w_held <= 1'b1; w_data <= s_axil_wdata; w_strb <= s_axil_wstrb; end
            if (aw_held && w_held) begin
                aw_held <= 1'b0; w_held <= 1'b0; s_axil_bvalid <= 1'b1;
                if (win) begin
                    s_axil_bresp <= win_bad ? SLVERR : OKAY;
                end else if (aw_addr == A_CONTROL[ADDR_W-1:0] && w_strb == 8'hff) begin
                    clear <= w_data[A_CONTROL_CLEAR_LSB];
                    s_axil_bresp <= OKAY;
                end else begin
                    s_axil_bresp <= SLVERR;
                end
            end
            if (s_axil_bvalid && s_axil_bready) s_axil_bvalid <= 1'b0;

            if (s_axil_arvalid && s_axil_arready) begin
                s_axil_rvalid <= 1'b1;
                s_axil_rresp  <= OKAY;
                case (s_axil_araddr)
                    A_ID[ADDR_W-1:0]:       s_axil_rdata <= ID_VALUE;
                    A_VERSION[ADDR_W-1:0]:  s_axil_rdata <= VERSION_VALUE;
                    A_GEOMETRY[ADDR_W-1:0]: s_axil_rdata <= GEOMETRY_VALUE;
                    A_FEATURES[ADDR_W-1:0]: s_axil_rdata <= FEATURES_VALUE;
                    A_CONTROL[ADDR_W-1:0]:  s_axil_rdata <= 64'd0;
                    A_STATUS[ADDR_W-1:0]:   s_axil_rdata <= {63'd0, any_dirty} << A_STATUS_ANY_DIRTY_LSB;
                    A_ERRORS[ADDR_W-1:0]:   s_axil_rdata <= errors;
                    A_ACCUMS[ADDR_W-1:0]:   s_axil_rdata <= accums;
                    default: begin s_axil_rdata <= 64'd0; s_axil_rresp <= SLVERR; end
                endcase
            end
            if (s_axil_rvalid && s_axil_rready) s_axil_rvalid <= 1'b0;
        end
    end
endmodule
`default_nettype wire
